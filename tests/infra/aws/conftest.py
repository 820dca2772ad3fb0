"""AWS test harness: a ``declare`` helper, one moto server, the SageMaker fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pulumi
import pytest

from tests import emulators
from tests.infra.aws.fake_sagemaker import FakeSageMaker

ACCOUNT = "123456789012"
REGION = "us-east-1"


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


# -- SageMaker fake (tests/infra/aws/fake_sagemaker.py) with moto's Application Auto Scaling --


@pytest.fixture(scope="session")
def autoscaling(moto_url: str) -> Callable[[], Any]:
    """Application Auto Scaling in moto (one client for the session)."""
    client = boto3.client(
        "application-autoscaling",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return lambda: client


@pytest.fixture(scope="session")
def fake_server(autoscaling: Callable[[], Any]) -> Iterator[FakeSageMaker]:
    server = FakeSageMaker(REGION, autoscaling=autoscaling).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake(fake_server: FakeSageMaker, aws_env: str) -> FakeSageMaker:
    """The fake, emptied, with moto reset (``aws_env``)."""
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="session")
def sm(fake_server: FakeSageMaker) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=fake_server.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
