"""Virtual environments for the real client libraries, made once per machine and reused.

The clients' pins clash with ours (kserve pins protobuf and pydantic, the SageMaker SDK and the
Vertex AI SDK pull in hundreds of packages), so each gets its own venv under
``$ML_ENDPOINTS_CLIENT_VENVS`` (default ``~/.cache/ml-endpoints/client-venvs``), named by a
digest of its requirements and the Python version: a changed pin makes a new venv, an unchanged
one is reused across test runs and sessions. Several pytest workers may ask at once: one
installs under a file lock, the others wait and reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from serving.artifacts import file_lock

#: Requirements of each client environment.
CLIENTS: dict[str, list[str]] = {
    # kserve's InferenceRESTClient and its pydantic response models (v2_datamodels)
    "kserve": ["kserve>=0.14"],
    # LocalModel / LocalEndpoint (google/cloud/aiplatform/prediction) drive the docker SDK
    "vertex": ["google-cloud-aiplatform[prediction]>=1.60"],
    # SDK v2 local mode (LocalSession) runs `docker-compose`; podman-compose stands in for it
    "sagemaker": ["sagemaker>=2.200,<3", "podman-compose>=1.0"],
}
INSTALL_TIMEOUT = 900
REPORT = "REPORT "
"""What a client script prints before its JSON report (SDKs print progress on stdout too)."""


class ClientUnavailable(RuntimeError):
    """The client's environment could not be made (the reason is the message)."""


def root() -> Path:
    default = Path.home() / ".cache" / "ml-endpoints" / "client-venvs"
    return Path(os.environ.get("ML_ENDPOINTS_CLIENT_VENVS", default))


def client_venv(name: str) -> Path:
    """The venv directory of client ``name``, installed first if missing."""
    requirements = CLIENTS[name]
    key = hashlib.sha256(json.dumps([requirements, sys.version_info[:2]]).encode()).hexdigest()[:12]
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    venv = base / f"{name}-{key}"
    done = venv / ".installed"
    with file_lock(base / f"{name}.lock"):
        if done.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        python = _base_python()
        log = base / f"{name}-{key}.log"
        with log.open("wb") as out:
            steps = [
                [python, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
            ]
            for step in steps:
                code = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT, check=False
                ).returncode
                if code != 0:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise ClientUnavailable(f"{' '.join(step[:4])} exited {code}:\n{tail}")
        done.write_text(json.dumps(requirements))
    return venv


def _base_python() -> str:
    """The interpreter this venv was made from (a venv inside a venv would inherit nothing)."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(candidate) if candidate.exists() else sys.executable


def run_script(
    name: str,
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> object:
    """Run ``scripts/<script>`` with client ``name``'s Python; return its JSON report (the last
    line starting with :data:`REPORT`).

    The script's stderr (and stdout) is in the assertion message when it fails."""
    venv = client_venv(name)
    path = Path(__file__).parent / "scripts" / script
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = f"{venv / 'bin'}:{full_env.get('PATH', '')}"
    full_env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(path), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        err = result.stderr
        shown = err if len(err) <= 12000 else f"{err[:6000]}\n[...]\n{err[-6000:]}"
        raise AssertionError(
            f"{script} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{shown}"
        )
    reports = [line for line in result.stdout.splitlines() if line.startswith(REPORT)]
    assert reports, f"{script} printed no {REPORT!r} line:\n{result.stdout[-4000:]}"
    return json.loads(reports[-1].removeprefix(REPORT))


def install_all() -> int:
    """Make every client venv that is missing, at once (``make test`` does this first)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(CLIENTS)) as pool:
        futures = {name: pool.submit(client_venv, name) for name in CLIENTS}
    failed = 0
    for name, future in futures.items():
        error = future.exception()
        if error is not None:
            failed += 1
            print(f"client venv {name}: {error}", file=sys.stderr)
        else:
            print(f"client venv {name}: {future.result()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(install_all())
