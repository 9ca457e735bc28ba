"""Real `flask worker` processes for benchmarks and the fault suite, started and stopped here."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class WorkerPool:
    env: dict[str, str]
    queues: tuple[str, ...] = ()
    procs: list[subprocess.Popen] = field(default_factory=list)
    restarts: int = 0

    def start(self, n: int = 1) -> None:
        cmd = [sys.executable, "-m", "flask", "--app", "shopify_app:create_app", "worker"]
        for q in self.queues:
            cmd += ["--queue", q]
        for _ in range(n):
            self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=self.env))

    def kill(self, index: int = 0) -> int:
        """SIGKILL one worker: no warm shutdown, its job in flight abandoned. Returns its pid."""
        proc = self.procs[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return proc.pid

    def supervise(self) -> int:
        """Replace workers that exited, as a process supervisor would. Returns how many."""
        replaced = 0
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.procs.pop(i)
                self.start(1)
                self.procs.insert(i, self.procs.pop())
                replaced += 1
        self.restarts += replaced
        return replaced

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (RQ's warm shutdown finishes the job in hand), then SIGKILL after `grace`."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()
