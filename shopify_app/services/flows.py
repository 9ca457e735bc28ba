"""Flow runs: start one, walk it step by step, end it — and the tick that moves every due run.

A run points at the next step to perform (`step_index`) and when (`next_step_at`). The step
is read from the flow's *current* definition when the run gets there, so an edit reaches every
run that has not reached the edited step yet. Steps keep their ids through edits
(flow_defaults), and an edit that moves, inserts or removes steps moves each active run to
where the step it was about to perform now stands (`reposition_runs`); a run whose remaining
steps were all removed completes. A run's texts are keyed by step id, so no step is texted
twice to one run whatever the edits.

Walking: a wait moves `next_step_at` on by its minutes, counted from when the step became due
(not from when the tick happened to look); a message step queues one Message and moves on;
the end of the steps completes the run. Several steps fall due in one tick when waits are
short (a 0-minute wait), and all of them are taken in that tick.

Exits, checked before a run performs anything: shop uninstalled, flow disabled ("flow_disabled"
— so runs stop at their next step), subscriber gone, opted out ("opted_out") or not subscribed,
and "purchased": for the abandoned-checkout flow when its checkout was completed (an order with
that checkout token, or `completed_at`), for every flow whose settings say `exit_on_purchase`
when the subscriber ordered after the run started. The same exits are also applied at once by
the triggers (services/flow_triggers.py) when the order or the opt-out arrives.

Rules in one place: quiet hours, smart sending, frequency and usage caps and consent at send
time are the messaging engine's. A flow only queues the text: one Message row per (run, step),
unique on (flow_run_id, flow_step), inserted with the same `INSERT … ON CONFLICT DO NOTHING`
as services/outgoing.queue_message but set-based (`insert_messages`), because the tick queues
tens of thousands at once. A text due inside quiet hours is deferred by the send path.

Holdout: `holdout_percent` of a flow's subscribers are held out — chosen by a deterministic hash
of (subscriber, flow), so the same person is in the same group for every run of that flow and
the comparison is between people. A held-out run walks like any other and sends nothing.

Discount steps need a call to Shopify per text, which the tick does not make: it parks the run
(`next_step_at` a short lease ahead) and queues `jobs.flows.discount_step`, which performs the
step with the code created first (services/discounts.create_flow_discount) and handed to the
message as `context["discount_code"]`. If the job is lost, the lease runs out and the tick
queues it again; the step stays exactly-once through the Message's unique key.

Concurrency: the tick takes due runs with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so several
ticks never walk the same run.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from sqlalchemy import String, and_, any_, bindparam, case, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shopify_app.extensions import db
from shopify_app.jobqueue import enqueue_after_commit
from shopify_app.models import Checkout, Flow, FlowRun, Message, Order, Shop, Subscriber, utcnow
from shopify_app.services import sending
from shopify_app.services.bulk import bulk_update, in_ids, is_postgresql
from shopify_app.services.discounts import (
    DiscountError,
    InvalidDiscountConfig,
    create_flow_discount,
)
from shopify_app.services.flow_defaults import reposition, settings_of, step_id
from shopify_app.services.links import allowed_link, shop_domains

log = logging.getLogger(__name__)

TICK_BATCH = 5000
TICK_BUDGET_SECONDS = 50.0
DISCOUNT_JOB = "jobs.flows.discount_step"
DISCOUNT_QUEUE = "default"
# The discount job has this long to perform the step before the tick queues it again.
DISCOUNT_LEASE = timedelta(minutes=2)
DISCOUNT_RETRY = timedelta(minutes=5)  # Shopify busy: try the step again after this
DISCOUNT_MAX_ATTEMPTS = 6
SQLITE_INSERT_CHUNK = 500  # rows per INSERT (SQLite caps bound parameters per statement)
PG_INSERT_CHUNK = 5000

_RUN_COLUMNS = (
    FlowRun.id,
    FlowRun.shop_id,
    FlowRun.flow_id,
    FlowRun.subscriber_id,
    FlowRun.step_index,
    FlowRun.next_step_at,
    FlowRun.held_out,
    FlowRun.context,
    FlowRun.created_at,
)
_FLOW_TAG = re.compile(
    r"(?<!\{)\{\s*(checkout_url|shop_url)\s*(?:\|([^{}]*))?\}(?!\})", re.IGNORECASE
)


# --- holdout ------------------------------------------------------------------------------

_HASH_MOD = 1_000_003


def holdout_bucket(subscriber_id: int, flow_id: int) -> int:
    """0..99, fixed per (subscriber, flow). The same integer arithmetic as the SQL below."""
    return ((subscriber_id % _HASH_MOD) * 7919 + (flow_id % _HASH_MOD) * 104729) % 100


def holdout_bucket_sql(subscriber_column: Any, flow_id: int) -> Any:
    """`holdout_bucket` as a SQL expression, for set-based starts."""
    return ((subscriber_column % _HASH_MOD) * 7919 + (flow_id % _HASH_MOD) * 104729) % 100


def in_holdout(subscriber_id: int, flow_id: int, percent: int) -> bool:
    return percent > 0 and holdout_bucket(subscriber_id, flow_id) < percent


# --- starting and ending runs -------------------------------------------------------------


def initial_position(steps: Sequence[dict[str, Any]], trigger_at: datetime) -> tuple[int, datetime]:
    """Where a new run starts: past its leading waits, due when they have passed."""
    index, due = 0, trigger_at
    while index < len(steps) and steps[index].get("type") == "wait":
        due += timedelta(minutes=int(steps[index].get("minutes") or 0))
        index += 1
    return index, due


def dialect_insert() -> Any:
    """INSERT … ON CONFLICT for the session's database."""
    return pg_insert if is_postgresql(db.session) else sqlite_insert


def start_run(
    shop: Shop,
    flow: Flow,
    subscriber_id: int,
    trigger_key: str,
    *,
    trigger_at: datetime,
    context: dict[str, Any] | None = None,
    restart_wait: bool = False,
) -> int | None:
    """Start one run of an enabled flow, once per (flow, trigger_key): a second trigger with
    the same key changes nothing — except, with `restart_wait`, that a run still in its first
    wait waits from the newer `trigger_at` (a shopper still editing the checkout has not
    abandoned it yet). Returns the run id, or None when no run was started or changed.
    The caller commits."""
    if not flow.enabled or not shop.is_installed:
        return None
    now = utcnow()
    index, due = initial_position(flow.steps, min(trigger_at, now))
    stmt = dialect_insert()(FlowRun).values(
        shop_id=shop.id,
        flow_id=flow.id,
        subscriber_id=subscriber_id,
        trigger_key=trigger_key,
        status="active",
        step_index=index,
        next_step_at=due,
        held_out=in_holdout(subscriber_id, flow.id, flow.holdout_percent),
        context=context or {},
        created_at=now,
        updated_at=now,
    )
    if restart_wait:
        stmt = stmt.on_conflict_do_update(
            index_elements=["flow_id", "trigger_key"],
            set_={"next_step_at": stmt.excluded.next_step_at, "updated_at": now},
            where=and_(
                FlowRun.status == "active",
                FlowRun.step_index == stmt.excluded.step_index,
                FlowRun.next_step_at < stmt.excluded.next_step_at,
            ),
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["flow_id", "trigger_key"])
    return db.session.execute(stmt.returning(FlowRun.id)).scalar()


def reposition_runs(
    shop_id: int, flow_id: int, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> int:
    """The flow's steps changed from `old` to `new`: move each active run to where the step
    it was about to perform now stands (flow_defaults.reposition), so an edit reaches exactly
    the runs that have not got to the edited step. One UPDATE; its row locks wait for a tick
    walking the same runs (which read the old steps) and then remap what that tick wrote.
    Returns how many runs moved. The caller commits, with the new steps."""
    mapping = {p: n for p, n in reposition(old, new).items() if p != n}
    end = len(new)
    if not mapping and len(old) == end:
        return 0
    beyond = FlowRun.step_index > len(old)  # stored before edits moved runs: past the end
    result = db.session.execute(
        update(FlowRun)
        .where(
            FlowRun.shop_id == shop_id,
            FlowRun.flow_id == flow_id,
            FlowRun.status == "active",
            or_(FlowRun.step_index.in_(list(mapping)), beyond) if mapping else beyond,
        )
        .values(
            step_index=case(mapping, value=FlowRun.step_index, else_=end) if mapping else end,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def exit_runs(shop_id: int, reason: str, *where: Any) -> int:
    """End the shop's active runs matching `where` with `reason`. The caller commits."""
    now = utcnow()
    result = db.session.execute(
        update(FlowRun)
        .where(FlowRun.shop_id == shop_id, FlowRun.status == "active", *where)
        .values(
            status="exited", exit_reason=reason, next_step_at=None, ended_at=now, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


# --- what a batch needs to know -----------------------------------------------------------


@dataclass(frozen=True)
class FlowDef:
    id: int
    kind: str
    enabled: bool
    steps: list[dict[str, Any]]
    settings: dict[str, Any]


@dataclass
class Facts:
    flows: dict[int, FlowDef] = field(default_factory=dict)
    shops: dict[int, Shop] = field(default_factory=dict)
    subscribers: dict[int, Any] = field(default_factory=dict)
    done_checkouts: set[tuple[int, str]] = field(default_factory=set)
    recovery_urls: dict[tuple[int, str], str] = field(default_factory=dict)
    signup_codes: dict[int, str] = field(default_factory=dict)
    # Each shop's link domains, worked out once per batch rather than once per text.
    link_domains: dict[int, tuple[str, ...]] = field(default_factory=dict)


def _strings_in(column: Any, values: Sequence[str]) -> Any:
    if is_postgresql(db.session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String())))
    return column.in_(list(values))


def load_facts(runs: Sequence[Any]) -> Facts:
    """Everything the exits and the texts of these runs depend on, in a few queries."""
    facts = Facts()
    flow_ids = sorted({r.flow_id for r in runs})
    for flow in db.session.scalars(select(Flow).where(Flow.id.in_(flow_ids))):
        facts.flows[flow.id] = FlowDef(
            flow.id,
            flow.kind,
            flow.enabled,
            list(flow.steps or []),
            settings_of(flow.kind, flow.settings),
        )
    for shop in db.session.scalars(
        select(Shop).where(Shop.id.in_(sorted({r.shop_id for r in runs})))
    ):
        facts.shops[shop.id] = shop
        facts.link_domains[shop.id] = shop_domains(shop)
        code = (shop.setting("widget") or {}).get("welcome_discount")
        if isinstance(code, str) and code.strip():
            facts.signup_codes[shop.id] = code.strip()
    sub_ids = sorted({r.subscriber_id for r in runs})
    for row in db.session.execute(
        select(Subscriber.id, Subscriber.status, Subscriber.phone, Subscriber.last_order_at).where(
            in_ids(db.session, Subscriber.id, sub_ids)
        )
    ):
        facts.subscribers[row.id] = row
    tokens = sorted(
        {
            (r.context or {}).get("checkout_token")
            for r in runs
            if facts.flows.get(r.flow_id) is not None
            and facts.flows[r.flow_id].kind == "abandoned_checkout"
        }
        - {None}
    )
    if tokens:
        shop_ids = sorted(facts.shops)
        for row in db.session.execute(
            select(
                Checkout.shop_id, Checkout.token, Checkout.completed_at, Checkout.recovery_url
            ).where(Checkout.shop_id.in_(shop_ids), _strings_in(Checkout.token, tokens))
        ):
            if row.completed_at is not None:
                facts.done_checkouts.add((row.shop_id, row.token))
            if row.recovery_url:
                facts.recovery_urls[(row.shop_id, row.token)] = row.recovery_url
        for row in db.session.execute(
            select(Order.shop_id, Order.checkout_token).where(
                Order.shop_id.in_(shop_ids), _strings_in(Order.checkout_token, tokens)
            )
        ):
            facts.done_checkouts.add((row.shop_id, row.checkout_token))
    return facts


def exit_reason(run: Any, flow: FlowDef | None, facts: Facts) -> str | None:
    """Why this run must stop now, or None."""
    shop = facts.shops.get(run.shop_id)
    if shop is None or not shop.is_installed:
        return "uninstalled"
    if flow is None or not flow.enabled:
        return "flow_disabled"
    sub = facts.subscribers.get(run.subscriber_id)
    if sub is None or not sub.phone:
        return "subscriber_gone"
    if sub.status == "unsubscribed":
        return "opted_out"
    if sub.status != "subscribed":
        return "not_subscribed"
    token = (run.context or {}).get("checkout_token")
    if flow.kind == "abandoned_checkout" and (run.shop_id, token) in facts.done_checkouts:
        return "purchased"
    if (
        flow.settings.get("exit_on_purchase")
        and sub.last_order_at is not None
        and sub.last_order_at > run.created_at
    ):
        return "purchased"
    return None


# --- walking ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one walk decided for one run."""

    run: Any
    step_index: int
    next_step_at: datetime | None
    status: str
    exit_reason: str | None = None
    messages: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    parked_for_discount: bool = False


def walk(
    run: Any,
    flow: FlowDef | None,
    reason: str | None,
    now: datetime,
    *,
    allow_discount: bool = False,
    base: datetime | None = None,
) -> Outcome:
    """Perform every step of `run` that is due at `now`. Pure: returns what to write.

    `base` is when the current step became due (default `next_step_at`); later waits count
    from it."""
    if reason is not None or flow is None:
        return Outcome(run, run.step_index, None, "exited", reason or "flow_disabled")
    steps = flow.steps
    index = run.step_index
    due = base or run.next_step_at or now
    out = Outcome(run, index, None, "active")
    while True:
        out.step_index = index
        if index >= len(steps):
            out.status = "completed"
            return out
        step = steps[index]
        if step.get("type") == "wait":
            due += timedelta(minutes=int(step.get("minutes") or 0))
            index += 1
            if due > now:
                out.step_index, out.next_step_at = index, due
                return out
            continue
        if step.get("type") == "message":
            if step.get("discount") and not run.held_out and not allow_discount:
                out.next_step_at, out.parked_for_discount = now + DISCOUNT_LEASE, True
                return out
            if not run.held_out:
                out.messages.append((index, step))
        # A step of another type (only writable around the API) is passed over.
        index += 1


def fill_flow_tags(body: str, values: dict[str, str | None]) -> str:
    """Put the flow's own merge tags ({checkout_url}, {shop_url}) into a step's text, leaving
    the engine's tags for the send path. Values are escaped so they are never read as tags."""

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1).lower()) or (match.group(2) or "").strip()
        return value.replace("{", "{{").replace("}", "}}")

    return _FLOW_TAG.sub(replace, body)


def recovery_link(shop: Shop, url: str, domains: tuple[str, ...] | None = None) -> str:
    """A checkout's recovery URL on a domain the shop's links may point to: when its host is
    not one the shop record lists (a custom domain not known yet), the same path on the
    myshopify domain, which serves it too. `domains`: the shop's link domains, if known."""
    if allowed_link(shop, url, domains):
        return url
    parts = urlsplit(url.strip())
    return urlunsplit(("https", shop.domain, parts.path, parts.query, ""))


def shop_url(shop: Shop) -> str:
    return f"https://{shop.primary_domain or shop.domain}/"


def message_rows(outcomes: Iterable[Outcome], facts: Facts, now: datetime) -> list[dict[str, Any]]:
    """The Message rows (every NOT NULL column listed) for the texts the outcomes queue."""
    rows = []
    for out in outcomes:
        run = out.run
        flow = facts.flows[run.flow_id]
        shop = facts.shops[run.shop_id]
        token = (run.context or {}).get("checkout_token")
        recovery = facts.recovery_urls.get((run.shop_id, token)) or (run.context or {}).get(
            "recovery_url"
        )
        tags = {
            "shop_url": shop_url(shop),
            "checkout_url": (
                recovery_link(shop, recovery, facts.link_domains.get(run.shop_id))
                if recovery
                else None
            ),
        }
        for index, step in out.messages:
            context = None
            code = facts.signup_codes.get(run.shop_id)
            if (
                flow.kind == "welcome"
                and flow.settings.get("signup_offer")
                and code
                and not step.get("discount")
            ):
                context = {"discount_code": code}
            rows.append(
                {
                    "shop_id": run.shop_id,
                    "subscriber_id": run.subscriber_id,
                    "kind": "flow",
                    "template": fill_flow_tags(str(step.get("body") or ""), tags),
                    "flow_run_id": run.id,
                    "flow_step": step_id(step, index),
                    "context": context,
                    "status": "pending",
                    "marketing": True,
                    "due_at": now,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return rows


# --- writing ------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in a bulk insert")


def insert_messages(rows: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """Insert Message rows idempotently (ON CONFLICT DO NOTHING: a (run, step) that already
    has its row keeps it) and return (id, shop_id) of the rows that are new.

    The bulk twin of services/outgoing.queue_message: the send jobs are scheduled per shop by
    the caller after commit instead of one job per row. PostgreSQL receives each chunk as one
    JSON parameter (`json_to_recordset`), which is far cheaper than one parameter per value."""
    if not rows:
        return []
    table = Message.__table__
    columns = list(rows[0])
    new: list[tuple[int, int]] = []
    if not is_postgresql(db.session):
        for start in range(0, len(rows), SQLITE_INSERT_CHUNK):
            chunk = rows[start : start + SQLITE_INSERT_CHUNK]
            stmt = (
                sqlite_insert(table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(table.c.id, table.c.shop_id)
            )
            new += [(r[0], r[1]) for r in db.session.execute(stmt)]
        return new
    dialect = postgresql.dialect()
    types = ", ".join(f"{c} {table.c[c].type.compile(dialect=dialect)}" for c in columns)
    names = ", ".join(columns)
    sql = text(
        f"INSERT INTO message ({names}) "  # noqa: S608 - names come from the table
        f"SELECT {names} FROM json_to_recordset(CAST(:rows AS json)) AS v({types}) "
        "ON CONFLICT DO NOTHING RETURNING id, shop_id"
    )
    for start in range(0, len(rows), PG_INSERT_CHUNK):
        chunk = rows[start : start + PG_INSERT_CHUNK]
        payload = json.dumps(chunk, default=_json_default, separators=(",", ":"))
        new += [(r[0], r[1]) for r in db.session.execute(sql, {"rows": payload})]
    return new


def _write_runs(outcomes: Sequence[Outcome], now: datetime) -> None:
    rows = [
        {
            "id": o.run.id,
            "step_index": o.step_index,
            "next_step_at": o.next_step_at,
            "status": o.status,
            "exit_reason": o.exit_reason,
            "ended_at": None if o.status == "active" else now,
        }
        for o in outcomes
    ]
    bulk_update(db.session, FlowRun.__table__, rows, constants={"updated_at": now})


def _schedule_sends(shop_ids: Iterable[int]) -> None:
    """Make sure send jobs pick up the rows just committed (the send sweep is the safety
    net when Redis is briefly away)."""
    for shop_id in sorted(set(shop_ids)):
        try:
            sending.schedule_sending(shop_id)
        except redis.RedisError:
            log.warning("could not schedule sending for shop %s; the send sweep will", shop_id)


# --- the tick -----------------------------------------------------------------------------


@dataclass
class TickReport:
    runs: int = 0
    messages: int = 0
    completed: int = 0
    exited: int = 0
    parked: int = 0
    batches: int = 0
    exits: dict[str, int] = field(default_factory=dict)

    def count(self, outcomes: Sequence[Outcome], messages: int) -> None:
        self.runs += len(outcomes)
        self.messages += messages
        self.batches += 1
        for out in outcomes:
            if out.status == "completed":
                self.completed += 1
            elif out.status == "exited":
                self.exited += 1
                reason = out.exit_reason or "exited"
                self.exits[reason] = self.exits.get(reason, 0) + 1
            self.parked += out.parked_for_discount


def due_runs_query(now: datetime, limit: int) -> Any:
    """The tick's one query: active runs due by `now`, oldest first, locked for this
    transaction (others' locked rows skipped). Served by the partial index ix_flow_run_due."""
    return (
        select(*_RUN_COLUMNS)
        .where(FlowRun.status == "active", FlowRun.next_step_at <= now)
        .order_by(FlowRun.next_step_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def due_runs(now: datetime, limit: int) -> list[Any]:
    return list(db.session.execute(due_runs_query(now, limit)))


def process_batch(runs: Sequence[Any], now: datetime, report: TickReport) -> set[int]:
    """Walk the runs, queue their texts, write their new positions. Commits. Returns the
    shops that got new texts."""
    facts = load_facts(runs)
    outcomes = []
    for run in runs:
        flow = facts.flows.get(run.flow_id)
        outcomes.append(walk(run, flow, exit_reason(run, flow, facts), now))
    new = insert_messages(message_rows(outcomes, facts, now))
    _write_runs(outcomes, now)
    for out in outcomes:
        if out.parked_for_discount:
            enqueue_after_commit(
                DISCOUNT_JOB,
                out.run.id,
                out.step_index,
                queue=DISCOUNT_QUEUE,
                job_id=f"flow-discount-{out.run.id}-{out.step_index}",
            )
    db.session.commit()
    report.count(outcomes, len(new))
    return {shop_id for _, shop_id in new}


def tick(*, batch_size: int = TICK_BATCH, time_budget: float = TICK_BUDGET_SECONDS) -> TickReport:
    """Move every due run, batch after batch, for up to `time_budget` seconds (the next
    periodic tick carries on from there)."""
    report = TickReport()
    started = time.monotonic()
    while True:
        now = utcnow()
        runs = due_runs(now, batch_size)
        if not runs:
            db.session.rollback()
            break
        _schedule_sends(process_batch(runs, now, report))
        if len(runs) < batch_size or time.monotonic() - started >= time_budget:
            break
    return report


# --- discount steps -----------------------------------------------------------------------


def _postpone(run: Any, until: datetime, attempts: int) -> None:
    db.session.execute(
        update(FlowRun)
        .where(FlowRun.id == run.id, FlowRun.status == "active")
        .values(
            next_step_at=until,
            updated_at=utcnow(),
            context={**(run.context or {}), "discount_attempts": attempts},
        )
        .execution_options(synchronize_session=False)
    )


def _codes_for(out: Outcome, facts: Facts, *, final: bool) -> int:
    """Create the code of each discount text this outcome queues and hand it to its Message.
    Raises DiscountError when Shopify was only busy and this is not the `final` attempt (the
    caller retries the step later); otherwise a text without its code keeps the reason in its
    context and is skipped by the send path when its wording needs the code."""
    run = out.run
    shop = facts.shops[run.shop_id]
    made = 0
    for index, step in out.messages:
        config = step.get("discount")
        if not config:
            continue
        message = db.session.scalars(
            Message.for_shop(run.shop_id).where(
                Message.flow_run_id == run.id, Message.flow_step == step_id(step, index)
            )
        ).one()
        problem = None
        try:
            # A savepoint: a failed attempt leaves no half-made code that rendering could use.
            with db.session.begin_nested():
                code = create_flow_discount(
                    shop, run.flow_id, run.subscriber_id, message.id, dict(config)
                )
        except DiscountError as exc:
            if exc.retryable and not final:
                raise
            problem = exc.reason
        except InvalidDiscountConfig as exc:
            problem = str(exc)
        if problem is not None:
            log.warning("flow run %s step %s: no discount code (%s)", run.id, index, problem)
            message.context = {**(message.context or {}), "discount_error": problem[:200]}
            continue
        message.context = {**(message.context or {}), "discount_code": code}
        made += 1
    return made


def discount_step(run_id: int, step_index: int) -> str:
    """Perform a parked run's discount step (and what follows it that is due). Safe to run
    twice: it acts only while the run is active at `step_index`. Commits. Returns what
    happened: done, retry, or gone."""
    now = utcnow()
    run = db.session.execute(
        select(*_RUN_COLUMNS)
        .where(FlowRun.id == run_id, FlowRun.status == "active", FlowRun.step_index == step_index)
        .with_for_update(skip_locked=True)
    ).first()
    if run is None:
        db.session.rollback()
        return "gone"
    facts = load_facts([run])
    flow = facts.flows.get(run.flow_id)
    out = walk(run, flow, exit_reason(run, flow, facts), now, allow_discount=True, base=now)
    new = insert_messages(message_rows([out], facts, now))
    attempts = int((run.context or {}).get("discount_attempts") or 0) + 1
    try:
        _codes_for(out, facts, final=attempts >= DISCOUNT_MAX_ATTEMPTS)
    except DiscountError as exc:
        db.session.rollback()
        log.info("flow run %s: Shopify busy (%s); step retried later", run_id, exc.reason)
        _postpone(run, now + DISCOUNT_RETRY, attempts)
        db.session.commit()
        return "retry"
    _write_runs([out], now)
    db.session.commit()
    _schedule_sends(shop_id for _, shop_id in new)
    return "done"
