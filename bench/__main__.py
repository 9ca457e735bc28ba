"""`make bench`: run every benchmark group, print its BENCH lines, write docs/benchmarks.md.

Each group is a module run as its own process (`python -m bench.<module> [--quick]`) so one
group's memory, threads and connections never colour the next one's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import bench_db_url, bench_redis_url, ensure_database

ROOT = Path(__file__).resolve().parent.parent

GROUPS: dict[str, list[str]] = {
    "send": ["bench.send_pipeline"],
    "webhooks": ["bench.webhook_intake"],
    "clicks": ["bench.clicks"],
    "segments": ["bench.segment_count"],
    "stats": ["bench.stats_campaign"],
    "start": ["bench.campaign_start"],
    "flows": ["bench.flow_tick"],
    "admin": ["bench.admin_pages"],
}

# figure -> (">=" or "<", threshold, unit): the targets on a 2-core machine.
TARGETS: dict[str, tuple[str, float, str]] = {
    "send.msgs_per_s": (">=", 1000, "msg/s"),
    "send.ceiling_ratio": (">=", 0.5, ""),
    "webhooks.acks_per_s": (">=", 1000, "/s"),
    "webhooks.p99_ms": ("<", 50, "ms"),
    "clicks.p99_ms": ("<", 10, "ms"),
    "segments.count_1m_ms": ("<", 1000, "ms"),
    "stats.campaign_1m_ms": ("<", 1000, "ms"),
    "start.500k_s": ("<", 10, "s"),
    "admin.lcp_p75_worst_ms": ("<", 1500, "ms"),
    "admin.js_css_worst_kb": ("<", 150, "KB"),
}


def judge(name: str, value: str) -> tuple[str, str]:
    """(target, verdict) for a figure: "yes", or "**no** (x2.3 off)" saying by how much."""
    if name not in TARGETS:
        return "", ""
    op, threshold, unit = TARGETS[name]
    target = f"{op} {threshold:g} {unit}".strip()
    try:
        v = float(value)
    except ValueError:
        return target, "?"
    met = v >= threshold if op == ">=" else v < threshold
    if met:
        return target, "yes"
    if v <= 0:
        return target, "**no**"
    factor = threshold / v if op == ">=" else v / threshold
    return target, f"**no** (x{factor:.1f} off)"


# Output lines worth keeping in the notes beside the figures (context and profiles).
NOTE_RE = re.compile(r"^(profile|saturation|open loop|worker side|clicks stored|[a-z_]+: \d)")

BENCH_RE = re.compile(r"^BENCH (\S+) (\S+) (.+)$")


@dataclass
class GroupResult:
    name: str
    module: str
    seconds: float
    exit_code: int
    figures: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_module(group: str, module: str, quick: bool, env: dict[str, str]) -> GroupResult:
    cmd = [sys.executable, "-m", module] + (["--quick"] if quick else [])
    print(f"== {group}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    figures, notes = [], []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        match = BENCH_RE.match(line.strip())
        if match:
            figures.append(match.groups())
        elif NOTE_RE.match(line.strip()):
            notes.append(line.rstrip())
    code = proc.wait()
    return GroupResult(group, module, time.monotonic() - started, code, figures, notes)


def machine_facts() -> list[str]:
    facts = [
        f"python {platform.python_version()} on {platform.platform()}",
        f"{os.cpu_count()} cores",
    ]
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        facts.append(cpu)
        mem_kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        facts.append(f"{mem_kb / 1024 / 1024:.0f} GiB memory")
    except (OSError, StopIteration, ValueError):
        pass
    for cmd in (["psql", "--version"], ["redis-server", "--version"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
            facts.append(out.strip().split("\n")[0])
        except (OSError, subprocess.SubprocessError):
            pass
    return facts


def write_report(results: list[GroupResult], quick: bool, argv: list[str]) -> Path:
    out = ROOT / "docs" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench{' QUICK=1' if quick else ''}` "
        f"(`python -m bench {' '.join(argv)}`) on "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "Every figure is also printed as `BENCH <name> <value> <unit>`. Ceilings are measured in",
        "the same run on the same machine.",
        "",
        "Machine: " + "; ".join(machine_facts()),
        "",
        "| group | figure | value | unit | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if not r.figures:
            lines.append(f"| {r.name} | (no figures: exit {r.exit_code}) | | | | |")
        for name, value, unit in r.figures:
            target, met = judge(name, value)
            lines.append(f"| {r.name} | `{name}` | {value} | {unit} | {target} | {met} |")
    lines += ["", "| group | command | seconds | exit |", "|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.name} | `python -m {r.module}{' --quick' if quick else ''}` | "
            f"{r.seconds:.0f} | {r.exit_code} |"
        )
    lines += [
        "",
        "Each group alone: `make bench ONLY=<group>` (add `QUICK=1` for a tenth of the size).",
        "The fault suite and the fuzzers run on their own: `make faults`, `make fuzz`.",
    ]
    for r in results:
        if r.notes:
            lines += ["", f"## {r.name}: context and request-path profile", "", "```"]
            lines += r.notes
            lines += ["```"]
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--only", choices=sorted(GROUPS), action="append", help="run only this group (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of each size")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", bench_db_url())
    env.setdefault("BENCH_REDIS_URL", bench_redis_url())
    ensure_database(env["BENCH_DATABASE_URL"])
    groups = args.only or list(GROUPS)
    results = [run_module(g, m, args.quick, env) for g in groups for m in GROUPS[g]]
    report = write_report(results, args.quick, argv)
    print(f"\nwrote {report.relative_to(ROOT)}")
    failed = [r for r in results if r.exit_code != 0]
    for r in failed:
        print(f"group {r.name} ({r.module}) exited {r.exit_code}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
