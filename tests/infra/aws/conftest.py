"""AWS test harness: richer Pulumi mock outputs, a ``declare`` helper, one moto server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pulumi
import pytest

from tests import emulators
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
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    """One ``moto_server`` on 127.0.0.1 for the session."""
    with emulators.moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_url(moto: emulators.Emulator) -> str:
    return moto.url


@pytest.fixture
def aws_env(moto: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto account; boto3's default clients (as the CLI builds them) point at it."""
    emulators.use_moto(moto, monkeypatch)
    return moto.url


@pytest.fixture
def aws_client(aws_env: str) -> Callable[[str], Any]:
    """``aws_client("sagemaker")``: a boto3 client talking to the moto server."""

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_env, region_name=REGION)

    return make
