"""The CrossGuard entry point (``infra/policy/__main__.py``) wires every check as a mandatory
stack policy. Constructing a real PolicyPack starts a gRPC server and blocks, so the test
records what the module hands to PolicyPack and drives those policies directly. The pack
directory is run as Pulumi runs it (``runpy.run_path(DIR, run_name="__main__")``, see
tests/infra/test_entry_points.py)."""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from typing import Any

import pulumi
import pulumi_policy
import pytest
from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs

from infra.policies import POLICIES
from tests.infra.offline_plans import ROOT

PACK = ROOT / "infra" / "policy"


@pytest.fixture
def pack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    recorded: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: recorded.update(kwargs))
    runpy.run_path(str(PACK), run_name="__main__")
    yield recorded
    pulumi.runtime.set_all_config({})


def policy_resource(type_: str, name: str, props: dict[str, Any]) -> PolicyResource:
    return PolicyResource(
        resource_type=type_,
        props=props,
        urn=f"urn:pulumi:prod::ml-endpoints::{type_}::{name}",
        name=name,
        opts=None,  # type: ignore[arg-type]
        provider=None,
        parent=None,
        dependencies=[],
        property_dependencies={},
    )


def run_policy(pack: dict[str, Any], name: str, resources: list[PolicyResource]) -> list[str]:
    policy = next(p for p in pack["policies"] if p.name == name)
    reported: list[str] = []
    policy.validate(
        StackValidationArgs(resources=resources), lambda message, urn=None: reported.append(message)
    )
    return reported


def test_every_check_is_a_mandatory_stack_policy(pack: dict[str, Any]) -> None:
    assert pack["name"] == "ml-endpoints"
    assert pack["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in pack["policies"]] == [p.name for p in POLICIES]


def test_policies_report_violations_and_read_the_stack_policy_settings(
    pack: dict[str, Any],
) -> None:
    config = {
        "config": {"ProductionVariants": [{"VariantName": "champion", "InitialInstanceCount": 1}]}
    }
    resources = [
        policy_resource(
            "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment", "sagemaker", config
        )
    ]
    pulumi.runtime.set_all_config({"ml-endpoints:policy": json.dumps({"production": False})})
    assert run_policy(pack, "production-replicas", resources) == []
    pulumi.runtime.set_all_config({"ml-endpoints:policy": json.dumps({"production": True})})
    assert run_policy(pack, "production-replicas", resources) == [
        "variant champion InitialInstanceCount is 1; production needs at least 2"
    ]
    service = policy_resource(
        "kubernetes:core/v1:Service", "public", {"spec": {"type": "LoadBalancer"}}
    )
    assert len(run_policy(pack, "no-public-exposure", [service])) == 1
    pulumi.runtime.set_all_config(
        {"ml-endpoints:policy": json.dumps({"allow_public_exposure": ["public"]})}
    )
    assert run_policy(pack, "no-public-exposure", [service]) == []
