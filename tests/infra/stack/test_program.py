"""The Pulumi program (``infra/program/__main__.py`` -> :func:`infra.stack.program.main`) under
Pulumi's mocks, reading its configuration the way ``pulumi up`` hands it over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from infra.stack.files import StackError, read_stack_file, stack_file
from infra.stack.mocks import RecordingMocks
from infra.stack.program import main
from tests.infra.offline_plans import STACKS_DIR


@pytest.fixture
def dev_config(pulumi_mocks: RecordingMocks) -> Iterator[dict[str, Any]]:
    yield read_stack_file(stack_file("dev", STACKS_DIR))
    pulumi.runtime.set_all_config({})


def run_program(config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> None:
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        list(secret_keys),
    )

    pulumi.runtime.test(main)()  # type: ignore[no-untyped-call]


def test_declares_the_enabled_targets(
    pulumi_mocks: RecordingMocks, dev_config: dict[str, Any]
) -> None:
    run_program(dev_config)
    components = sorted(r.type for r in pulumi_mocks.resources if r.type.startswith("ml-end"))
    assert components == [
        "ml-endpoints:aws:EcrRepository",
        "ml-endpoints:aws:SageMakerEndpoint",
        "ml-endpoints:k8s:ExistingCluster",
        "ml-endpoints:k8s:ModelDeployment",
    ]
    (endpoint,) = pulumi_mocks.of_type("pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment")
    images = {m["PrimaryContainer"]["Image"] for m in endpoint.inputs["models"].values()}
    assert images == {
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/ml-endpoints/serving@sha256:"
        "9f2c4e8a1b7d3f6e0c5a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f"
    }
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "dev"
    deployments = pulumi_mocks.of_type("kubernetes:apps/v1:Deployment")
    assert len(deployments) == 2
    assert all(d.provider and d.provider.split("::")[-2] == "cluster-k8s" for d in deployments)


def test_a_switched_off_target_is_not_declared(
    pulumi_mocks: RecordingMocks, dev_config: dict[str, Any]
) -> None:
    dev_config["ml-endpoints:sagemaker"]["enabled"] = False
    run_program(dev_config)
    assert not [r for r in pulumi_mocks.resources if r.type.startswith("aws:")]
    assert pulumi_mocks.of_type("kubernetes:apps/v1:Deployment")


def test_plain_text_secret_in_config_is_refused(
    pulumi_mocks: RecordingMocks, dev_config: dict[str, Any]
) -> None:
    dev_config["ml-endpoints:kubernetes"]["env"] = {"API_TOKEN": "hunter2-plain"}
    with pytest.raises(
        StackError, match=r"Pulumi.test.yaml: ml-endpoints:kubernetes.env.API_TOKEN"
    ):
        run_program(dev_config)
    assert not pulumi_mocks.resources


def test_a_secret_key_the_stack_file_does_not_encrypt_is_refused(
    pulumi_mocks: RecordingMocks, dev_config: dict[str, Any]
) -> None:
    """Pulumi holds ``ml-endpoints:kubernetes`` as secret (an ESC environment, say) but no stack
    file says which of its values are: nothing is declared, rather than the token in plain
    text (tests/infra/stack/test_secrets.py runs the program with a stack file)."""
    dev_config["ml-endpoints:kubernetes"]["env"] = {"API_TOKEN": "hunter2-decrypted"}
    with pytest.raises(StackError, match=r"ml-endpoints:kubernetes: Pulumi holds this key as a"):
        run_program(dev_config, secret_keys=("ml-endpoints:kubernetes",))
    assert not pulumi_mocks.resources


def test_a_misspelt_key_is_an_error(
    pulumi_mocks: RecordingMocks, dev_config: dict[str, Any]
) -> None:
    dev_config["ml-endpoints:kubernetess"] = {"enabled": False}
    with pytest.raises(StackError, match=r"ml-endpoints:kubernetess: not a known key"):
        run_program(dev_config)
