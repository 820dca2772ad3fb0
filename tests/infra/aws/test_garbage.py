"""``find_garbage``/``collect`` against the SageMaker fake: only configurations and models no
endpoint uses are removed (item 2 of issue 13: live ones are never deleted)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from infra.aws.endpoint_provider import OWNER_TAG
from infra.aws.garbage import collect, find_garbage
from serving.cli import main
from tests.infra.aws import stacks
from tests.infra.aws.fake_sagemaker import FakeSageMaker, Script

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1.0.0"
ROLE = "arn:aws:iam::123456789012:role/execution"
OURS = [{"Key": OWNER_TAG, "Value": "churn"}]


def model(sm: Any, name: str, tags: list[dict[str, str]] = OURS) -> None:
    sm.create_model(
        ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE, Tags=tags
    )


def config(sm: Any, name: str, *models: str, tags: list[dict[str, str]] = OURS) -> None:
    variants = [
        {
            "VariantName": f"v{i}",
            "ModelName": m,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
        for i, m in enumerate(models)
    ]
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, Tags=tags)


def test_only_what_no_endpoint_uses_is_collected(sm: Any, fake: FakeSageMaker) -> None:
    """In use: the configuration an endpoint runs, the one it is deploying
    (DescribeEndpoint PendingDeploymentSummary), one another endpoint runs, and every model they
    name. Not ours (no ``ml-endpoints:endpoint`` tag): never touched."""
    for name in ("churn-m1", "churn-m2", "churn-m3", "churn-m4", "churn-old"):
        model(sm, name)
    model(sm, "churn-foreign", tags=[])
    config(sm, "churn-live", "churn-m1")
    config(sm, "churn-next", "churn-m2")
    config(sm, "churn-shared", "churn-m3")
    config(sm, "churn-unused", "churn-old")
    config(sm, "churn-foreign-config", "churn-foreign", tags=[])
    sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-live")
    sm.create_endpoint(EndpointName="other", EndpointConfigName="churn-shared")
    fake.settle("churn")
    fake.settle("other")
    fake.script("update", Script(outcome="stall"))
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-next")

    garbage = find_garbage(sm, "churn", min_age_s=0)
    assert garbage.configs == ["churn-unused"]
    assert garbage.models == ["churn-m4", "churn-old"]
    assert garbage.in_use == ["churn-live", "churn-next", "churn-shared"]
    collect(sm, garbage)
    assert sorted(fake.configs) == [
        "churn-foreign-config",
        "churn-live",
        "churn-next",
        "churn-shared",
    ]
    assert sorted(fake.models) == ["churn-foreign", "churn-m1", "churn-m2", "churn-m3"]


def test_recent_ones_are_kept_with_their_models(sm: Any, fake: FakeSageMaker) -> None:
    """A ``pulumi up`` in flight may have created a configuration it has not deployed yet: one
    younger than ``min_age_s`` stays, and so do the models it names."""
    model(sm, "churn-m1")
    config(sm, "churn-fresh", "churn-m1")
    created = sm.describe_endpoint_config(EndpointConfigName="churn-fresh")["CreationTime"]
    soon = created + datetime.timedelta(minutes=5)
    assert find_garbage(sm, "churn", min_age_s=3600, now=soon).configs == []
    assert find_garbage(sm, "churn", min_age_s=3600, now=soon).models == []
    later = created + datetime.timedelta(hours=2)
    assert find_garbage(sm, "churn", min_age_s=3600, now=later).configs == ["churn-fresh"]


def test_gc_command_removes_only_the_unused(
    sm: Any,
    fake: FakeSageMaker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``ml-endpoints gc --stack NAME``: the cleanup path that replaces Pulumi's deletes (item 2
    of issue 13); ``--dry-run`` lists and keeps."""
    model(sm, "churn-m1")
    model(sm, "churn-old")
    config(sm, "churn-live", "churn-m1")
    config(sm, "churn-unused", "churn-old")
    sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-live")
    fake.settle("churn")
    (tmp_path / "Pulumi.test.yaml").write_text(json.dumps({"config": stacks.two_variant_stack()}))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
    command = ["gc", "--stack", "test", "--stacks-dir", str(tmp_path), "--min-age-minutes", "0"]

    assert main([*command, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete endpoint configuration churn-unused" in out
    assert "would delete model churn-old" in out
    assert "keep endpoint configuration churn-live (in use)" in out
    assert sorted(fake.configs) == ["churn-live", "churn-unused"]

    assert main(command) == 0
    assert sorted(fake.configs) == ["churn-live"]
    assert sorted(fake.models) == ["churn-m1"]
