"""The servers the benchmark starts: ours, the HTTP limit, the classic FastAPI app, MLServer.

Baselines run in their own virtual environments under ``.bench/`` (created on first use) with the
same scikit-learn version as ours, so every server loads the very same model file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from bench.load import LoadResult, run_wrk

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench"
OURS_BIN = Path(sys.executable).parent
QUIET_UVICORN = ("--no-access-log", "--log-level", "warning")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_venv(name: str, packages: list[str]) -> Path:
    """``.bench/venv-NAME`` with ``packages`` installed (once); returns its bin directory."""
    venv = WORK / f"venv-{name}"
    stamp = venv / ".installed"
    wanted = "\n".join(packages)
    if not stamp.exists() or stamp.read_text() != wanted:
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "-q", *packages], check=True)
        stamp.write_text(wanted)
    return venv / "bin"


def sklearn_pins() -> list[str]:
    """Pin the baselines to our numpy/scikit-learn so the same joblib file loads everywhere."""
    return [f"scikit-learn=={version('scikit-learn')}", f"numpy=={version('numpy')}", "joblib"]


@dataclass
class Server:
    """A server process pinned to one core; ``path`` and ``body`` describe its predict request."""

    label: str
    command: list[str]
    path: str
    body: bytes
    health: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    port: int = field(default_factory=free_port)
    content_type: str = "application/json"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, core: int, log_dir: Path, timeout: float = 120) -> None:
        """Start under ``taskset -c core`` and wait for the health route."""
        command = [c.replace("{port}", str(self.port)) for c in self.command]
        port = str(self.port)
        env = {**os.environ, **{k: v.replace("{port}", port) for k, v in self.env.items()}}
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.label)
        log = (log_dir / f"{slug}.log").open("wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), *command],
            env=env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited early; see {log.name}")
            try:
                with urllib.request.urlopen(self.url + self.health, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.label} not healthy within {timeout} s")

    def drive(self, connections: int, seconds: float, core: int) -> LoadResult:
        """``wrk`` on core ``core`` POSTing this server's request body at its path."""
        return run_wrk(
            self.url,
            self.path,
            self.body,
            connections=connections,
            seconds=seconds,
            core=core,
            content_type=self.content_type,
        )

    def rss_mb(self) -> float:
        """Resident memory of the server and all its child processes, in MB."""
        assert self.process is not None
        total = 0
        pids = [self.process.pid, *_descendants(self.process.pid)]
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the server and its child processes."""
        assert self.process is not None
        ticks = 0
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children + [d for c in children for d in _descendants(c)]


def single_row_bodies(row: list[float]) -> dict[str, bytes]:
    """The same row in each protocol's request format."""
    v2 = {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]}
    return {"predict": json.dumps({"features": row}).encode(), "v2": json.dumps(v2).encode()}


def ours(
    label: str,
    model_dir: Path,
    body: bytes,
    *extra: str,
    path: str = "/predict",
    tree: Path | None = None,
    content_type: str = "application/json",
    env: dict[str, str] | None = None,
) -> Server:
    """Our server with default settings (metrics on) on ``model_dir``, plus ``env``.

    ``tree``: run the ``serving`` package of that checkout (another commit, for an A/B) with this
    venv's dependencies: it goes first on ``PYTHONPATH`` and is the working directory, so that
    the server and the children it starts (``python -m serving ...``) import that tree's code."""
    env = {"ML_ENDPOINTS_CACHE_DIR": str(WORK / "cache"), **(env or {})}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return Server(
        label,
        [
            str(OURS_BIN / "ml-endpoints"),
            "serve",
            "--model",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
            *extra,
        ],
        path,
        body,
        "/ping",
        env=env,
        cwd=tree or REPO,
        content_type=content_type,
    )


def serving_package(tree: Path | None) -> str:
    """Where ``import serving`` resolves for a server started by :func:`ours` with ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)} if tree is not None else dict(os.environ)
    completed = subprocess.run(
        [str(OURS_BIN / "python"), "-c", "import serving; print(serving.__file__)"],
        env=env,
        cwd=tree or REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(completed.stdout.strip()).parent)


def noop(body: bytes) -> Server:
    """A bare ASGI app on our HTTP stack (uvicorn + httptools + uvloop): the ceiling."""
    return Server(
        "bare ASGI no-op (limit)",
        [
            str(OURS_BIN / "python"),
            "-m",
            "uvicorn",
            "bench.baselines.noop_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            *QUIET_UVICORN,
        ],
        "/predict",
        body,
        "/health",
    )


def fastapi(label: str, model_file: Path, body: bytes) -> Server:
    """The classic FastAPI app, started the way its authors do: ``uvicorn app:app``."""
    bin_dir = ensure_venv("fastapi", ["fastapi", "uvicorn[standard]", *sklearn_pins()])
    return Server(
        label,
        [
            str(bin_dir / "uvicorn"),
            "bench.baselines.fastapi_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            *QUIET_UVICORN,
        ],
        "/predict",
        body,
        "/health",
        env={"MODEL_PATH": str(model_file)},
    )


def mlserver(label: str, model_file: Path, body: bytes, *, batching: bool) -> Server:
    """MLServer + mlserver-sklearn in its own venv; optionally with adaptive batching."""
    # uvloop 0.22+ no longer creates a loop in get_event_loop(), which MLServer 1.7 relies on.
    bin_dir = ensure_venv(
        "mlserver", ["mlserver", "mlserver-sklearn", "uvloop<0.22", *sklearn_pins()]
    )
    root = WORK / ("mlserver-batching" if batching else "mlserver-default")
    model_dir = root / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, object] = {
        "name": "model",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_file)},
    }
    if batching:
        settings.update(max_batch_size=64, max_batch_time=0.002)
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    return Server(
        label,
        [str(bin_dir / "mlserver"), "start", str(root)],
        "/v2/models/model/infer",
        body,
        "/v2/health/ready",
        env={
            "MLSERVER_HTTP_PORT": "{port}",
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
            "MLSERVER_LOGGING_LEVEL": "WARNING",
        },
    )


def sagemaker_xgboost(label: str, model_file: Path, body: bytes) -> Server:
    """Flask + gunicorn (gevent, one worker per CPU) serving ``model_file`` the way SageMaker's
    XGBoost container does (``bench/baselines/sagemaker_xgboost_app.py``), in its own venv with
    our xgboost and numpy versions."""
    bin_dir = ensure_venv(
        "sagemaker-xgboost",
        [
            "flask",
            "gunicorn",
            "gevent",
            "packaging",  # gunicorn's gevent worker imports it
            f"xgboost-cpu=={version('xgboost-cpu')}",
            f"numpy=={version('numpy')}",
        ],
    )
    return Server(
        label,
        [
            str(bin_dir / "gunicorn"),
            "--worker-class",
            "gevent",
            "--workers",
            str(os.cpu_count() or 1),
            "--keep-alive",
            "60",
            "--bind",
            "127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.baselines.sagemaker_xgboost_app:app",
        ],
        "/invocations",
        body,
        "/ping",
        env={"MODEL_PATH": str(model_file)},
        content_type="text/csv",
    )
