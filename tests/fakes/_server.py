"""Shared plumbing for the loopback stand-ins: run an aiohttp app on 127.0.0.1 in a thread
(in-process use) or in the main thread (``python -m tests.fakes.<name>``), and spawn one as
a separate process.

A stand-in subclasses :class:`FakeService`, implements ``build_app()`` and optionally the
``_on_loop_start`` / ``_on_loop_stop`` coroutines (run inside the server's event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None):
    """A JSON response without aiohttp's per-call overhead of ``web.json_response``."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


class FakeService:
    """Base class: lifecycle (``start``/``stop``/context manager), ``url`` and helpers to run
    code on the server's event loop from another thread."""

    #: seconds aiohttp waits for in-flight handlers when stopping
    shutdown_timeout = 0.5

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.BaseRunner | None = None
        self._port: int | None = None
        self._host = HOST
        self._closing: asyncio.Event | None = None

    # -- to implement ----------------------------------------------------------------------
    def build_app(self) -> web.Application | Handler:  # pragma: no cover - abstract
        """An aiohttp Application, or a bare ``async def handler(request)`` served by
        aiohttp's low-level ``web.Server`` (cheaper per request)."""
        raise NotImplementedError

    async def _on_loop_start(self) -> None:
        """Runs in the server loop before it accepts connections."""

    async def _on_loop_stop(self) -> None:
        """Runs in the server loop before the listener is closed."""

    # -- properties --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    # -- lifecycle -----------------------------------------------------------------------------
    async def _astart(self, host: str, port: int) -> None:
        self._closing = asyncio.Event()
        await self._on_loop_start()
        app = self.build_app()
        runner: web.BaseRunner
        if isinstance(app, web.Application):
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.shutdown_timeout)
        else:  # a bare handler: aiohttp's low-level server, no routing overhead
            server = web.Server(app, access_log=None)
            runner = web.ServerRunner(server, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = runner.addresses[0][1]

    async def _astop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        with contextlib.suppress(Exception):
            await self._on_loop_stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    def start(self, port: int = 0, host: str = HOST):
        """Start serving in a background thread with its own event loop; returns self."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart(host, port))
            except BaseException as exc:  # handed to the starting thread
                error.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}-loop", daemon=True)
        self._thread.start()
        ready.wait(30)
        if error:
            self._thread.join(5)
            self._thread = None
            self._loop = None
            raise error[0]
        return self

    def stop(self) -> None:
        """Stop serving: pending background work (callbacks, hung answers) is cancelled."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
            self._thread = None
            self._loop = None
            self._port = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- running things on the loop --------------------------------------------------------------
    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def run_sync(self, coro: Coroutine[Any, Any, Any], timeout: float | None = 60) -> Any:
        """Run ``coro`` on the server loop from another thread and return its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{type(self).__name__} is not running")
        if self._in_loop_thread():
            coro.close()
            raise RuntimeError("run_sync() called from the server's own loop; await it instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- separate process ------------------------------------------------------------------------
    def serve_forever(self, port: int = 0, host: str = HOST) -> None:
        """Serve in the main thread until SIGINT/SIGTERM; prints ``READY <url>`` once listening."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            self._loop = loop
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            await self._astart(host, port)
            print(f"READY {self.url}", flush=True)
            try:
                await stop.wait()
            finally:
                await self._astop()

        asyncio.run(main())


class SpawnedFake:
    """A stand-in running as a child process (``python -m <module> --port 0 ...``).

    ``url`` is read from the child's ``READY <url>`` line. ``control(path, payload)`` calls
    the stand-in's ``/_fake/...`` API. Use as a context manager or call ``stop()``.
    """

    def __init__(self, module: str, *args: str, timeout: float = 20, env: dict | None = None):
        cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.url = ""
        line = ""
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("READY "):
                    self.url = line.split()[1]
                    break
        finally:
            timer.cancel()
        if not self.url:
            self.stop()
            raise RuntimeError(f"{module} did not start (last line: {line!r})")

    def control(self, path: str, payload: Any = None, method: str | None = None) -> Any:
        return control_request(self.url, path, payload, method)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def control_request(base_url: str, path: str, payload: Any = None, method: str | None = None):
    """Call a stand-in's control API (``/_fake/...``) with the standard library; returns JSON."""
    data = None if payload is None else json.dumps(payload).encode()
    method = method or ("GET" if data is None else "POST")
    req = urllib.request.Request(
        base_url.rstrip("/") + "/_fake/" + path.lstrip("/"),
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")
