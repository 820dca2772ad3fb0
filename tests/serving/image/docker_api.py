"""podman as a Docker daemon: its Docker API socket for SDKs that drive ``docker``, and a
``docker-compose`` that runs ``podman-compose`` for the SageMaker SDK's local mode."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serving.image.podman import Podman


@contextmanager
def docker_api(podman: Podman, directory: Path) -> Iterator[str]:
    """``podman system service`` on a private socket; yields its ``DOCKER_HOST`` URL."""
    path = directory / "docker.sock"
    log = (directory / "podman-service.log").open("wb")
    process = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{path}"],
        env=podman.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers_ping(path):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"podman system service did not come up:\n{Path(log.name).read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield f"unix://{path}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _answers_ping(path: Path) -> bool:
    """Whether the Docker API on ``path`` answers ``GET /_ping`` with OK."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        try:
            client.connect(str(path))
            client.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            return b"OK" in client.recv(4096)
        except OSError:
            return False


def docker_shims(directory: Path, podman_compose: Path) -> Path:
    """A directory holding ``docker-compose`` (execs ``podman_compose``) and ``docker`` (execs
    ``podman``), to put first on ``PATH``. Returns the directory.

    ``docker context inspect`` answers as the Docker CLI does for its default context: podman
    prints ``[]``, on which the SageMaker SDK's ``get_docker_host`` fails (it reads the first
    context's endpoint; sagemaker/local/utils.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    compose = directory / "docker-compose"
    compose.write_text(f'#!/bin/sh\nexec "{podman_compose}" "$@"\n')
    docker = directory / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = context ] && [ "$2" = inspect ]; then\n'
        f"  echo '{_DEFAULT_CONTEXT}'\n"
        "  exit 0\n"
        "fi\n"
        'exec podman "$@"\n'
    )
    for shim in (compose, docker):
        shim.chmod(0o755)
    return directory


_DEFAULT_CONTEXT = json.dumps(
    [{"Name": "default", "Endpoints": {"docker": {"Host": "unix:///var/run/docker.sock"}}}]
)


def remove_compose_containers(podman: Podman, working_dir_prefix: str) -> None:
    """Remove the containers podman-compose started from compose files under the prefix (the
    SageMaker SDK stops its endpoint by killing ``docker-compose``, which leaves them behind)."""
    listed = podman("ps", "--all", "--format", "json", check=False)
    for container in json.loads(listed.stdout or "[]"):
        labels = container.get("Labels") or {}
        if labels.get("com.docker.compose.project.working_dir", "").startswith(working_dir_prefix):
            podman("rm", "--force", "--time", "0", container["Id"], check=False)


def remove_containers_on_port(podman: Podman, host_port: int) -> None:
    """Remove the containers publishing ``host_port`` (an SDK that started one and then failed
    may leave it behind)."""
    listed = podman("ps", "--all", "--format", "json", check=False)
    for container in json.loads(listed.stdout or "[]"):
        ports = container.get("Ports") or []
        if any(p.get("host_port") == host_port for p in ports):
            podman("rm", "--force", "--time", "0", container["Id"], check=False)
