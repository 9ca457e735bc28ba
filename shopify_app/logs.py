"""Logging: every line carries the shop and job id; phone numbers and tokens never appear."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

_shop: contextvars.ContextVar[str] = contextvars.ContextVar("tidings_shop", default="-")
_job: contextvars.ContextVar[str] = contextvars.ContextVar("tidings_job", default="-")

# E.164-looking numbers and bearer-like secrets are masked even if a caller forgot.
_PHONE_RE = re.compile(r"\+\d{7,15}\b")
_SECRET_RE = re.compile(r"(shpat_|shpua_|shprt_|Bearer\s+|eyJ)[A-Za-z0-9._\-]+")


def mask_text(text: str) -> str:
    text = _SECRET_RE.sub(lambda m: m.group(1) + "***", text)
    return _PHONE_RE.sub(lambda m: "+***" + m.group(0)[-2:], text)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.shop = _shop.get()
        record.job_id = _job.get()
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = mask_text(str(record.msg))
        return True


@contextmanager
def log_context(*, shop: str | None = None, job_id: str | None = None) -> Iterator[None]:
    tokens = []
    if shop is not None:
        tokens.append((_shop, _shop.set(shop)))
    if job_id is not None:
        tokens.append((_job, _job.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_shop(shop: str) -> None:
    _shop.set(shop)


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [shop=%(shop)s job=%(job_id)s] %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("alembic", "urllib3", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
