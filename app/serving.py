"""Run the ASGI server: uvicorn in one or several worker processes on one TCP socket, stopped gracefully.

The listening socket is bound here, as TCP: asyncio sets TCP_NODELAY only on sockets whose
protocol is IPPROTO_TCP, and uvicorn binds with protocol 0, so every keep-alive response after
the first waited ~40 ms for the client's delayed ACK (Kludex/uvicorn#3149).

Several workers: this process supervises them (it restarts one that dies, and stops all if one
cannot start), and gives them a private PROMETHEUS_MULTIPROC_DIR so a scrape sums every worker
(app.metrics).

SIGTERM or SIGINT (to this process, or to the whole process group) stops gracefully, within
``shutdown_timeout`` seconds: each worker takes what waits in the accept queue (closing the
listener would reset those connections) and stops accepting; for a short drain every response
says ``Connection: close``, so a client on a kept-alive connection gets its answer and a clean
close instead of a connection closed under a request it was sending; then uvicorn finishes the
requests in flight, closes what is left, and the application shuts down
(docs/observability.md).

uvicorn is used through ``Config``, ``Server.run(sockets=...)``, and three of ``Server``'s
internals: ``handle_exit`` (overridden), ``servers`` and ``server_state.connections``; pin
uvicorn to the range this was tested with (pyproject.toml).
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

import uvicorn

from app import __version__, observability

APP = "app.main:create_app"
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that could not start
LISTENERS_CLOSE_SECONDS = 0.3  # for every worker, signalled together, to close its listener
EXTRA_WAIT_SECONDS = 15.0  # beyond the timeout: the application's own shutdown (background threads)
log = logging.getLogger("casebridge.lifecycle")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str
    port: int
    workers: int = 1
    log_level: str = "info"
    proxy_headers: bool = False
    forwarded_allow_ips: str | None = None
    shutdown_timeout: float = 20.0
    database: str = "unknown"  # its kind, for the startup line (never the URL)

    @property
    def drain_seconds(self) -> float:
        """How long kept-alive connections get to send one more request, answered with a close."""
        return min(2.0, self.shutdown_timeout / 4)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (protocol IPPROTO_TCP, inheritable by the workers)."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def server_config(options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        factory=True,
        host=options.host,
        port=options.port,
        log_config=None,
        log_level=options.log_level.lower(),
        access_log=False,  # one line per request comes from app.observability
        proxy_headers=options.proxy_headers,
        forwarded_allow_ips=options.forwarded_allow_ips if options.proxy_headers else None,
        timeout_graceful_shutdown=max(1, math.ceil(options.shutdown_timeout - options.drain_seconds)),
        server_header=False,
    )


class GracefulServer(uvicorn.Server):
    """uvicorn's server with a drain before its shutdown (module docstring)."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float, listener: socket.socket) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.listener = listener
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not re-raised after the shutdown (uvicorn would, and die of it): the exit is a clean 0.
        if self._draining:
            if sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop now
            return
        self._draining = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet
            self.should_exit = True
            return
        name = signal.Signals(sig).name
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain(name)))

    async def _drain(self, signal_name: str) -> None:
        log.info("worker draining", extra={"pid": os.getpid(), "signal": signal_name,
                                           "connections": len(self.server_state.connections)})
        # Connections the kernel accepted but no worker has taken yet would be reset when the
        # listener closes, though their clients have sent a request: take them first.
        deadline = time.monotonic() + self.drain_seconds
        while _queued(self.listener) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for server in self.servers:
            server.close()  # no new connections here
        # Only once every process has stopped listening are clients told to reconnect: one that
        # reconnected into a listener's queue just before it closed would get a reset.
        await asyncio.sleep(LISTENERS_CLOSE_SECONDS)
        observability.start_draining()  # kept-alive connections get their answer and a close
        deadline = time.monotonic() + self.drain_seconds
        while self.server_state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.should_exit = True


def _worker(options: ServeOptions, sock: socket.socket) -> None:
    """A worker process: serve on the inherited socket until told to stop."""
    GracefulServer(server_config(options), options.drain_seconds, sock).run(sockets=[sock])


def _queued(listener: socket.socket) -> int:
    """Connections waiting in the listener's accept queue (Linux: TCP_INFO's tcpi_unacked); else 0."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return 0
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, tcp_info, 104)
    except OSError:
        return 0
    return int(struct.unpack_from("I", info, 24)[0]) if len(info) >= 28 else 0


def _worker_process(options: ServeOptions, sock: socket.socket) -> None:
    """A spawned worker: once its server and application have shut down, it exits at once.

    (The interpreter's own finalisation took seconds more, out of the shutdown timeout; there
    is nothing left for it to do: connections, database pools and threads are closed.)
    """
    observability.configure_logging(options.log_level)
    _worker(options, sock)
    _exit(0)


def run_server(options: ServeOptions) -> NoReturn:
    """Serve until SIGTERM/SIGINT, then exit the process: 0 once every worker stopped in time, else 1.

    It exits at once (``os._exit``) after the last line: the server and application have
    closed everything, and the interpreter's own finalisation took seconds out of the budget.
    """
    observability.configure_logging(options.log_level)
    sock = bind_socket(options.host, options.port)
    started = time.monotonic()
    log.info("server starting", extra={
        "version": __version__, "pid": os.getpid(), "workers": options.workers, "database": options.database,
        "host": options.host, "port": sock.getsockname()[1], "proxy_headers": options.proxy_headers,
        "shutdown_timeout_seconds": options.shutdown_timeout,
    })
    try:
        if options.workers > 1:
            clean = Supervisor(options, sock).run()
        else:
            _worker(options, sock)
            clean = True
    finally:
        sock.close()
    log.info("server stopped", extra={
        "version": __version__, "pid": os.getpid(), "clean": clean,
        "uptime_seconds": round(time.monotonic() - started, 3),
    })
    _exit(0 if clean else 1)


def _exit(code: int) -> NoReturn:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Supervisor:
    """Starts ``workers`` processes on one socket, replaces one that dies, stops them all on a signal."""

    def __init__(self, options: ServeOptions, sock: socket.socket) -> None:
        self.options = options
        self.sock = sock
        self.stop = threading.Event()
        self.signal_name = ""
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(sig).name
        self.stop.set()

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=_worker_process, args=(self.options, self.sock), name="casebridge-worker")
        process.start()
        return process

    def run(self) -> bool:
        """True if every worker stopped by itself within the timeout."""
        from prometheus_client import multiprocess

        from app.metrics import MULTIPROC_ENV

        directory = tempfile.mkdtemp(prefix="casebridge-metrics-")  # private: 0700, fresh per start
        os.environ[MULTIPROC_ENV] = directory
        log.info("metrics summed over the workers", extra={"metrics_dir": directory})
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        failed = False
        try:
            self.processes = [self._spawn() for _ in range(self.options.workers)]
            while not self.stop.wait(0.2):
                for index, process in enumerate(self.processes):
                    if process.is_alive():
                        continue
                    process.join()
                    multiprocess.mark_process_dead(process.pid, directory)  # type: ignore[no-untyped-call]
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("a worker failed to start; stopping", extra={"worker_pid": process.pid})
                        failed = True
                        self.stop.set()
                        break
                    log.warning("a worker died; starting another",
                                extra={"worker_pid": process.pid, "exit_code": process.exitcode})
                    self.processes[index] = self._spawn()
            log.info("server stopping", extra={"pid": os.getpid(), "signal": self.signal_name or None,
                                               "timeout_seconds": self.options.shutdown_timeout})
            # This process holds the socket too: close it, or connections would queue unanswered.
            self.sock.close()
            clean = self._stop_workers() and not failed
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(directory, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
        return clean

    def _stop_workers(self) -> bool:
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.shutdown_timeout + EXTRA_WAIT_SECONDS
        clean = True
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("a worker did not stop in time; killing it", extra={"worker_pid": process.pid})
                process.kill()
                process.join()
                clean = False
        return clean
