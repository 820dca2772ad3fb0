"""AWS test harness: a ``declare`` helper and one moto server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pulumi
import pytest

from tests import emulators

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
