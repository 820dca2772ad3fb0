"""Run the app: one in-process worker, or a small supervisor over several worker processes.

Shutdown (SIGTERM or SIGINT) in every worker: readiness turns false at once, requests are still
served for ``drain_seconds`` (the pre-stop window), then the listener closes, in-flight requests
finish within ``graceful_timeout`` and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING

from serving.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from serving.app import ServingApp

log = logging.getLogger("ml_endpoints.server")
#: Seconds a worker gets after drain + graceful shutdown to exit (drift thread stop, capture flush)
#: before the supervisor kills it.
WORKER_EXIT_MARGIN = 30.0
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def bind(host: str, port: int) -> socket.socket:
    """Listen right away (before heavy imports) so connections are accepted within milliseconds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> int:
    """Serve until told to stop; returns the exit code."""
    try:
        sock = bind(settings.host, settings.resolved_port)
    except OSError as exc:
        print(
            f"ml-endpoints: cannot listen on {settings.host}:{settings.resolved_port}: "
            f"{exc.strerror}",
            file=sys.stderr,
        )
        return 1
    from serving.privileges import unprivileged

    try:
        settings = unprivileged(settings)  # started as root: read the model, then drop root
    except (OSError, ValueError) as exc:
        print(f"ml-endpoints: cannot serve as {settings.serving_user}: {exc}", file=sys.stderr)
        return 1
    if settings.workers == 1:
        run_worker(settings.model_dump_json(), sock)
        return 0
    return Supervisor(settings, sock).run()


def _make_server(settings: Settings, app: ServingApp) -> uvicorn.Server:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """A uvicorn server that drains before it stops listening and exits 0 on SIGTERM."""

        drain_until: float | None = None
        loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # A signal handler interrupts the main thread anywhere, possibly inside a metric
            # update or a log call holding a non-reentrant lock: it only sets state and hands
            # the real work (readiness, metrics, logging) to the event loop.
            if self.drain_until is None:
                self.drain_until = time.monotonic() + settings.drain_seconds
                if self.loop is None:  # not serving yet: nothing to drain
                    self.should_exit = True
                else:
                    self.loop.call_soon_threadsafe(_begin_drain, sig)
            elif self.should_exit:
                self.force_exit = True
            else:
                self.should_exit = True  # a second signal ends the drain window early

        async def on_tick(self, counter: int) -> bool:
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                self.should_exit = True
            return await super().on_tick(counter)

    def _begin_drain(sig: int) -> None:
        app.begin_drain()
        log.info("signal %d: draining for %.1f s", sig, settings.drain_seconds)

    from serving.transport import http_protocol

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=http_protocol(
            app, read_timeout=settings.read_timeout, max_header_bytes=settings.max_header_bytes
        ),
        lifespan="on",
        access_log=settings.access_log,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers propagate to ours: one log format
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=65,
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        backlog=2048,
    )
    return DrainingServer(config)


def run_worker(settings_json: str, sock: socket.socket, load_first: bool = False) -> None:
    """One worker process: build the app and serve on the inherited socket.

    ``load_first``: accept no connection before the model is loaded (a replacement worker must
    not answer 503 while its siblings are ready)."""
    settings = Settings.model_validate_json(settings_json)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(settings.model_threads))  # before numpy loads
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    from serving.compose import create_app

    server = _make_server(settings, create_app(settings, load_before_serving=load_first))
    server.run(sockets=[sock])


class Supervisor:
    """Starts ``workers`` processes on one shared socket, replaces any that die, stops them all."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self.stopping = False
        self._recent_deaths: list[float] = []

    def _spawn(self, *, replacement: bool = False) -> BaseProcess:
        process = self.context.Process(
            target=run_worker,
            args=(self.settings.model_dump_json(), self.sock, replacement),
            daemon=False,
        )
        process.start()
        log.info("started worker %s", process.pid)
        return process

    def _on_signal(self, sig: int, _: FrameType | None) -> None:
        # No logging here (a handler may interrupt a log call); run() logs once it sees the flag.
        self.stopping = True
        for process in self.workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    def run(self) -> int:
        """Supervise until a signal; returns 0 when every worker stopped cleanly."""
        logging.basicConfig(level=self.settings.log_level.upper(), format=LOG_FORMAT)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.workers = [self._spawn() for _ in range(self.settings.workers)]
        while not self.stopping:
            time.sleep(0.2)
            for i, process in enumerate(self.workers):
                if process.is_alive() or self.stopping:
                    continue
                log.error(
                    "worker %s died with exit code %s; replacing it", process.pid, process.exitcode
                )
                self._forget(process)
                self._backoff()
                self.workers[i] = self._spawn(replacement=True)
        log.info("stopping %d workers", len(self.workers))
        deadline = (
            time.monotonic()
            + self.settings.drain_seconds
            + self.settings.graceful_timeout
            + WORKER_EXIT_MARGIN
        )
        code = 0
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
                code = 1
            self._forget(process)
        return code

    def _forget(self, process: BaseProcess) -> None:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory and process.pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(process.pid, directory)

    def _backoff(self) -> None:
        """Slow down replacing workers that keep dying (at most 5 per 10 s)."""
        now = time.monotonic()
        self._recent_deaths = [t for t in self._recent_deaths if now - t < 10] + [now]
        if len(self._recent_deaths) > 5:
            time.sleep(2)
