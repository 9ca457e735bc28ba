"""The benchmarks' load generator against a server that, like gunicorn, closes idle keep-alive
connections: a low arrival rate must measure the server, not a pile of dead connections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bench.loadgen import build_request, closed_loop, open_loop

IDLE_CLOSE_S = 0.15


class _Server:
    """HTTP/1.1 keep-alive on loopback; a connection idle for IDLE_CLOSE_S is closed. With
    `cut_after`, the answer after that many is cut off after its headers."""

    def __init__(self, cut_after: int | None = None) -> None:
        self.cut_after = cut_after
        self.requests = 0
        self.connections = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        handlers = asyncio.all_tasks(self._loop)
        for task in handlers:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*handlers, return_exceptions=True))
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_CLOSE_S)
                except (TimeoutError, asyncio.IncompleteReadError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.requests += 1
                if self.requests - 1 == self.cut_after:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
                    await writer.drain()
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            writer.close()

    def __enter__(self) -> _Server:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as running:
        yield running


def _factory(port: int):  # noqa: ANN202
    request = build_request("POST", "/hook", f"127.0.0.1:{port}", {}, b'{"id": 1}')
    return lambda _seq: request


def test_a_low_rate_reuses_warm_connections_and_loses_no_request(server: _Server) -> None:
    # 20/s: a first-in-first-out pool of 256 would leave every connection idle past the close.
    result = open_loop("127.0.0.1", server.port, _factory(server.port), rate=20, seconds=1.0)
    assert (result.errors, result.statuses) == (0, {200: 20})
    assert server.connections < 10  # first in, first out would open all 20


def test_a_connection_closed_while_idle_is_opened_again_and_the_request_sent(
    server: _Server,
) -> None:
    # One connection, a pause past the server's idle close between requests.
    result = open_loop(
        "127.0.0.1", server.port, _factory(server.port), rate=4, seconds=1.0, max_connections=1
    )
    assert (result.errors, result.statuses) == (0, {200: 4})
    assert server.connections >= 2  # it was closed under the generator at least once


def test_closed_loop_counts_every_answer(server: _Server) -> None:
    result = closed_loop(
        "127.0.0.1", server.port, _factory(server.port), connections=4, seconds=0.3
    )
    assert result.errors == 0
    assert result.ok == result.statuses[200] > 0


def test_a_request_answered_in_part_is_an_error_and_never_sent_twice() -> None:
    with _Server(cut_after=1) as server:
        result = open_loop(
            "127.0.0.1", server.port, _factory(server.port), rate=20, seconds=0.1, max_connections=1
        )
        assert (result.statuses, result.errors) == ({200: 1}, 1)
        assert server.requests == 2
