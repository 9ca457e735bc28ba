"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, no client library).

Client libraries cost more CPU per request than the server under test on a 2-core machine, so
this writes requests and reads responses by hand. Two modes: closed loop (N connections, as fast
as the server answers: throughput) and open loop (a fixed arrival rate: latency at that rate).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RequestFactory = Callable[[int], bytes]  # sequence number -> complete HTTP request bytes


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def build_request(
    method: str, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader, first: bytes = b"") -> int:
    head = first + await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


class _NoAnswer(ConnectionError):
    """The connection closed before a single byte of the response arrived."""


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> int:
        if self.reader is not None and self.reader.at_eof():
            self.close()  # the server closed it while it sat idle (gunicorn's keep-alive: 2 s)
        reused = self.writer is not None
        try:
            return await self._send(data)
        except _NoAnswer:
            if not reused:
                raise
        # The server's close crossed our request and nothing at all was answered: send it
        # again on a new connection, as HTTP client pools do. Never after a partial answer.
        return await self._send(data)

    async def _send(self, data: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(data)
        try:
            try:
                first = await self.reader.readexactly(1)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise _NoAnswer("closed before answering") from exc
            return await _read_response(self.reader, first)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _closed_loop(
    host: str, port: int, factory: RequestFactory, connections: int, seconds: float
) -> LoadResult:
    result = LoadResult()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = _Conn(host, port)
        while time.perf_counter() < deadline:
            seq = next(counter)
            started = time.perf_counter()
            result.sent += 1
            try:
                status = await conn.request(factory(seq))
            except (OSError, asyncio.IncompleteReadError):
                result.errors += 1
                await asyncio.sleep(0.01)
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status < 400:
                result.ok += 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def _open_loop(
    host: str, port: int, factory: RequestFactory, rate: float, seconds: float, max_connections: int
) -> LoadResult:
    """Requests arrive every 1/rate seconds whatever the server does; latency includes waiting
    for a free connection, so a server that falls behind shows it (no coordinated omission)."""
    result = LoadResult()
    # Last in, first out, like a client's connection pool: the connection just answered is
    # reused, so a low rate keeps a few warm connections instead of cycling through all of
    # them (each idle past the server's keep-alive, closed, and opened again).
    pool: asyncio.LifoQueue[_Conn] = asyncio.LifoQueue()
    for _ in range(max_connections):
        pool.put_nowait(_Conn(host, port))
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one(seq: int, scheduled: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.request(factory(seq))
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status < 400:
                result.ok += 1
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
        finally:
            pool.put_nowait(conn)

    tasks = []
    for seq in range(total):
        scheduled = start + seq / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.sent += 1
        tasks.append(asyncio.ensure_future(one(seq, scheduled)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return result


def closed_loop(
    host: str, port: int, factory: RequestFactory, *, connections: int = 32, seconds: float = 5.0
) -> LoadResult:
    return asyncio.run(_closed_loop(host, port, factory, connections, seconds))


def open_loop(
    host: str,
    port: int,
    factory: RequestFactory,
    *,
    rate: float,
    seconds: float = 5.0,
    max_connections: int = 256,
) -> LoadResult:
    return asyncio.run(_open_loop(host, port, factory, rate, seconds, max_connections))
