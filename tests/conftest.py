"""Shared fixtures: the real server as a process on 127.0.0.1, and the demo model's artifacts."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def _cache_template() -> Path:
    """A server cache dir holding the demo model and its ONNX compilation, built once a session
    (content-addressed entries, safe to share) so each test server starts in about a second."""
    from serving.models.compiled import compile_cached

    template = Path(tempfile.mkdtemp(prefix="ml-endpoints-cache-template-"))
    demo = template / "demo-model"
    subprocess.run(
        [sys.executable, "-m", "serving", "demo-model", "--out", str(demo)],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    compile_cached(demo / "model.joblib", template)
    return template


@dataclass
class ServerProcess:
    """``ml-endpoints serve`` running as a child process; ``url`` is its base URL."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    flags: bool = True  # False: no --host/--port, as the platforms start it (port from env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self,
        log_dir: Path,
        *,
        wait_ready: bool = True,
        timeout: float = 60,
        ready_path: str = "/ping",
    ) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIP_", "SAGEMAKER_"))}
        env.pop("MODEL_URI", None)
        cache = log_dir / f"cache-{self.port}"
        if not cache.exists():  # start from the demo model and its compilation, made once
            shutil.copytree(_cache_template(), cache, copy_function=os.link)
        env["ML_ENDPOINTS_CACHE_DIR"] = str(cache)
        flags = ["--host", "127.0.0.1", "--port", str(self.port)]
        if not self.flags:
            env["ML_ENDPOINTS_HOST"] = "127.0.0.1"
            flags = []
        env.update(self.env)
        self.log_path = log_dir / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving", "serve", *flags, *self.args],
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        if wait_ready:
            self.wait_ready(timeout, ready_path)
        return self

    def wait_ready(self, timeout: float = 60, path: str = "/ping") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready within {timeout} s:\n{self.log()}")

    def wait_workers_ready(self, workers: int, timeout: float = 60) -> None:
        """Until every worker has loaded its model: /ping reaches one worker only, so a server of
        several workers can still answer 503 "model is loading" from another. The scrape's
        ``model_ready`` is the workers' minimum and ``model_server_workers`` their count."""
        from prometheus_client.parser import text_string_to_metric_families

        from serving.contract import READY_METRIC, WORKERS_METRIC

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = httpx.get(self.url + "/metrics", timeout=5)
            samples = {
                sample.name: sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
                if not sample.labels.keys() - {"model", "version", "variant"}
            }
            if samples.get(READY_METRIC) == 1 and samples.get(WORKERS_METRIC) == workers:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{workers} ready workers not reported in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait, and return the exit code (SIGKILL if it hangs)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    """Factory: ``start_server("--model", path, env={...})`` -> a running :class:`ServerProcess`."""
    servers: list[ServerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, wait_ready: bool = True, timeout: float = 60
    ) -> ServerProcess:
        server = ServerProcess(list(args), env or {})
        servers.append(server)
        return server.start(tmp_path, wait_ready=wait_ready, timeout=timeout)

    yield start
    for server in servers:
        server.stop(timeout=15)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo logistic regression as model.joblib + model.onnx + input_example.json."""
    from serving.demo import write_demo_artifacts

    return write_demo_artifacts(tmp_path_factory.mktemp("demo-model"), "logreg", onnx=True)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server on the bundled demo model, shared by read-only protocol tests."""
    server = ServerProcess([]).start(tmp_path_factory.mktemp("demo-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def reference() -> Any:
    """The demo model fitted in this process: scikit-learn's own answers to compare with."""
    from serving.demo import build_demo_model

    return build_demo_model()


@pytest.fixture(scope="session")
def demo_rows() -> list[list[float]]:
    """The breast-cancer rows the demo model was trained on."""
    from serving.demo import demo_data

    return demo_data()[0].tolist()  # type: ignore[no-any-return]
