"""Servers on 127.0.0.1 watched by a real Prometheus, for the dashboard, rules and canary tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess
from tests.infra.monitoring.harness import PrometheusServer
from tests.infra.monitoring.traffic import FAULT_HANDLER

#: ``serve(model, variant, prometheus, faults=False, **env)`` -> a ready, scraped server.
Serve = Callable[..., ServerProcess]
#: ``serve_pair(model, prometheus, champion={...}, challenger={...})`` -> both, started together.
ServePair = Callable[..., tuple[ServerProcess, ServerProcess]]
StartPrometheus = Callable[..., PrometheusServer]


@pytest.fixture(scope="session")
def start_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartPrometheus]:
    """Factory: ``start_prometheus(rule_files=[...])`` -> a running :class:`PrometheusServer`;
    all are stopped (by PID) at the end of the session."""
    started: list[PrometheusServer] = []

    def start(rule_files: tuple[Path, ...] = ()) -> PrometheusServer:
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), rule_files)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def prometheus(start_prometheus: StartPrometheus) -> PrometheusServer:
    """One Prometheus without rules, shared by the dashboard and canary tests (each test's
    servers carry their own ``model`` label, so their series never mix)."""
    return start_prometheus()


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Iterator[Serve]:
    """Factory for demo-model servers labelled ``model``/``variant``, scraped by ``prometheus``;
    ``faults=True`` serves through :data:`FAULT_HANDLER`; ``ready=False`` does not wait for
    readiness (with a ``model_uri`` that cannot load); ``namespace`` labels the scraped series as
    in a cluster. Drift windows are 100 rows so that a few seconds of traffic produce reports."""
    directory = tmp_path_factory.mktemp("monitored-servers")
    handler = directory / "fault_handler.py"
    handler.write_text(FAULT_HANDLER)
    servers: list[ServerProcess] = []

    def start(
        model: str,
        variant: str,
        prometheus: PrometheusServer,
        faults: bool = False,
        ready: bool = True,
        model_uri: str | None = None,
        namespace: str | None = None,
        **env: str,
    ) -> ServerProcess:
        args = ["--model", model_uri or str(demo_model_dir)]
        if faults:
            args += ["--handler", str(handler)]
        environment = {
            "MODEL_NAME": model,
            "ML_ENDPOINTS_VARIANT": variant,
            "ML_ENDPOINTS_DRIFT_WINDOW_ROWS": "100",
            "ML_ENDPOINTS_DRAIN_SECONDS": "0",  # nothing routes to them: stop at once
            **env,
        }
        server = ServerProcess(args, environment)
        servers.append(server)
        server.start(directory, wait_ready=ready)
        address = f"127.0.0.1:{server.port}"
        # As the Prometheus Operator labels a pod's series with its namespace.
        prometheus.add_target(address, **({"namespace": namespace} if namespace else {}))
        prometheus.wait_scraped(address)
        return server

    yield start
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda server: server.stop(timeout=15), servers))


@pytest.fixture(scope="session")
def serve_pair(serve: Serve) -> ServePair:
    """Champion and challenger of ``model`` started side by side (each ``serve``'s keywords)."""

    def start(
        model: str,
        prometheus: PrometheusServer,
        champion: dict[str, Any] | None = None,
        challenger: dict[str, Any] | None = None,
    ) -> tuple[ServerProcess, ServerProcess]:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(serve, model, "champion", prometheus, **(champion or {}))
            second = pool.submit(serve, model, "challenger", prometheus, **(challenger or {}))
            return first.result(), second.result()

    return start
