"""Local stand-ins for cloud services, run as processes on 127.0.0.1 for the tests.

- ``moto_server`` (AWS; boto3 follows ``AWS_ENDPOINT_URL``), ready when ``/moto-api/`` answers;
- ``gcp-storage-emulator`` (Cloud Storage, in memory; google-cloud-storage follows
  ``STORAGE_EMULATOR_HOST`` with anonymous credentials), ready when it accepts HTTP.

Use them as context managers from fixtures of the scope you need::

    @pytest.fixture(scope="module")
    def moto(tmp_path_factory):
        with emulators.moto(tmp_path_factory.mktemp("moto")) as server:
            yield server

and apply :attr:`Emulator.env` to the process environment (``monkeypatch.setenv``) or to a
child's. Waits are bounded (30 s); a server that exits or never answers fails with its log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

_START_TIMEOUT_S = 30.0

AWS_REGION = "us-east-1"
AWS_ACCOUNT = "123456789012"
"""The account moto answers as."""


@dataclass(frozen=True)
class Emulator:
    """A running emulator: its base URL, log file and the variables that point clients at it."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    env: dict[str, str]


@contextmanager
def _running(
    command: list[str], port: int, ready_path: str, log: Path, env: dict[str, str]
) -> Iterator[Emulator]:
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{command[0]} exited with {process.returncode}: {log.read_text()}"
                )
            try:
                httpx.get(url + ready_path, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{command[0]} did not answer on {url} within {_START_TIMEOUT_S:.0f} s: "
                        f"{log.read_text()}"
                    ) from None
                time.sleep(0.1)
        yield Emulator(process, url, log, env)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto(directory: Path) -> Iterator[Emulator]:
    """``moto_server`` with dummy credentials in :data:`AWS_REGION`."""
    port = free_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
    }
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _running(command, port, "/moto-api/", directory / "moto.log", env) as server:
        yield server


def use_moto(server: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean moto account, and boto3's default clients (as the commands build them) pointed
    at it: its variables set, profile and session variables removed."""
    httpx.post(f"{server.url}/moto-api/reset", timeout=10).raise_for_status()
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)


@contextmanager
def gcs(directory: Path) -> Iterator[Emulator]:
    """``gcp-storage-emulator``, in memory."""
    port = free_port()
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    installed = Path(sys.executable).with_name("gcp-storage-emulator")
    command = [
        str(installed) if installed.exists() else "gcp-storage-emulator",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
    ]
    with _running(command, port, "/", directory / "gcs.log", env) as server:
        yield server
