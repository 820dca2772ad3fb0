"""Build the serving image with ``serving/build-image.sh`` and run containers of it with podman."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serving.artifacts import file_lock
from tests.conftest import REPO, free_port

BUILD_SCRIPT = REPO / "serving" / "build-image.sh"
IMAGE = "localhost/ml-endpoints:test"
"""The image the tests build (``podman`` fixture in ``tests/serving/conftest.py``) and run."""
CONTAINER_PORT = 8080


class PodmanUnavailable(RuntimeError):
    """podman is missing or cannot run on this machine (the reason is the message)."""


@dataclass
class Podman:
    """The podman CLI with the configuration ``build-image.sh`` writes (runc, fixed ulimits)."""

    cache_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ML_ENDPOINTS_BUILD_CACHE": str(self.cache_dir),
            "CONTAINERS_CONF": str(self.cache_dir / "containers.conf"),
        }

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def build(self, image: str, log_path: Path) -> None:
        """Build ``image`` as ``make image`` does; raise PodmanUnavailable if podman cannot run."""
        if shutil.which("podman") is None:
            raise PodmanUnavailable("podman is not installed (`make system-deps` installs it)")
        env = {**self.env, "IMAGE": image}
        env.pop("CONTAINERS_CONF")  # the script writes it into ML_ENDPOINTS_BUILD_CACHE
        # pytest workers building at once would each build every layer: one builds, the others
        # then find every layer cached
        lock = Path(tempfile.gettempdir()) / "ml-endpoints-image-build.lock"
        with file_lock(lock), log_path.open("wb") as log:
            code = subprocess.run(
                ["bash", str(BUILD_SCRIPT)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=False,
            ).returncode
        if code == 0:
            return
        info = self("info", check=False)
        if info.returncode != 0:
            raise PodmanUnavailable(f"`podman info` fails: {info.stderr.strip()[-500:]}")
        tail = log_path.read_text(errors="replace")[-4000:]
        raise AssertionError(f"{BUILD_SCRIPT.name} exited {code}; end of its log:\n{tail}")

    def inspect_image(self, image: str) -> dict[str, Any]:
        document: list[dict[str, Any]] = json.loads(self("image", "inspect", image).stdout)
        return document[0]


@dataclass
class Container:
    """A detached container of the image, its port published on 127.0.0.1."""

    podman: Podman
    image: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    run_options: list[str] = field(default_factory=list)
    name: str = field(default_factory=lambda: f"ml-endpoints-test-{uuid.uuid4().hex[:10]}")
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Container:
        env_options = [option for k, v in self.env.items() for option in ("--env", f"{k}={v}")]
        self.podman(
            "run",
            "--detach",
            "--name",
            self.name,
            "--publish",
            f"127.0.0.1:{self.port}:{CONTAINER_PORT}",
            *env_options,
            *self.run_options,
            self.image,
            *self.args,
        )
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        """Poll ``/ping`` until 200; fail with the container's log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state()["Status"] == "exited":
                raise AssertionError(f"container exited:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/ping", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/ping not 200 within {timeout} s:\n{self.logs()}")

    def state(self) -> dict[str, Any]:
        result = self.podman("container", "inspect", "--format", "{{json .State}}", self.name)
        state: dict[str, Any] = json.loads(result.stdout)
        return state

    def logs(self) -> str:
        result = self.podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        self.podman("rm", "--force", "--time", "0", self.name, check=False)


@contextmanager
def running(
    podman: Podman,
    image: str,
    *args: str,
    env: dict[str, str] | None = None,
    run_options: list[str] | None = None,
) -> Iterator[Container]:
    """A container of ``image`` answering /ping with 200; removed on exit, whatever happened."""
    container = Container(podman, image, list(args), env or {}, run_options or [])
    try:
        container.start()
        container.wait_ready()
        yield container
    finally:
        container.remove()
