"""AWS test harness: richer Pulumi mock outputs, a ``declare`` helper, one moto server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pulumi
import pytest

from tests.conftest import free_port
from tests.infra.conftest import Declared, RecordingMocks, install_mocks

ACCOUNT = "123456789012"
REGION = "us-east-1"


class AwsMocks(RecordingMocks):
    """Like :class:`RecordingMocks`, plus the computed outputs AWS would return (role ARNs,
    repository URLs) so values flowing between resources look real."""

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        name = outputs["name"]
        if args.typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        elif args.typ == "aws:ecr/repository:Repository":
            outputs["arn"] = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"
            outputs["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"
        elif args.typ == "aws:sagemaker/endpoint:Endpoint":
            outputs["arn"] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}"
        return resource_id, outputs

    @property
    def options(self) -> dict[str, Declared]:
        """Declared resources by name (parent, timeouts, replacement options)."""
        return {r.name: r for r in self.resources}


@pytest.fixture
def pulumi_mocks() -> Iterator[AwsMocks]:
    """Fresh AWS-flavoured mocks and event loop per test."""
    yield from install_mocks(AwsMocks())  # type: ignore[misc]


def declare(build: Callable[[], pulumi.ComponentResource]) -> dict[str, Any]:
    """Run ``build`` as a Pulumi program under the mocks, wait until every resource is
    registered, and return the component's resolved public outputs."""
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        component = build()
        outputs = {
            key: value
            for key, value in vars(component).items()
            if isinstance(value, pulumi.Output) and not key.startswith("_") and key != "urn"
        }
        return pulumi.Output.all(**outputs).apply(resolved.update)

    program()
    return resolved


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``moto_server`` on 127.0.0.1 for the session (stopped in the finalizer)."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server not ready within 30 s: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto account; boto3's default clients (as the CLI builds them) point at it."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    for key, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    return moto_url


@pytest.fixture
def aws_client(aws_env: str) -> Callable[[str], Any]:
    """``aws_client("sagemaker")``: a boto3 client talking to the moto server."""

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_env, region_name=REGION)

    return make
