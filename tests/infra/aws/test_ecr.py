"""EcrRepository under Pulumi mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.aws.config import EcrRepositoryArgs
from infra.aws.ecr import EcrRepository, lifecycle_policy
from infra.stack.mocks import RecordingMocks, mocked
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare
from tests.infra.aws.ecr_lifecycle import Image, expired

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
PULL_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"


def deploy(config: dict[str, Any]) -> dict[str, Any]:
    return declare(lambda: EcrRepository("serving", config))


def test_defaults_scan_immutable_aes256(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy({"name": stacks.REPOSITORY})

    repository = pulumi_mocks.one(REPOSITORY)
    assert repository.inputs == {
        "name": stacks.REPOSITORY,
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "AES256"}],
        "forceDelete": False,
    }
    assert repository.parent is not None
    assert repository.parent.endswith("ml-endpoints:aws:EcrRepository::serving")
    assert pulumi_mocks.of_type(PULL_POLICY) == []
    assert outputs == {
        "repository_url": f"{stacks.ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{stacks.REPOSITORY}",
        "arn": f"arn:aws:ecr:us-east-1:{stacks.ACCOUNT}:repository/{stacks.REPOSITORY}",
        "name": stacks.REPOSITORY,
        "kms_key_arn": None,
    }


def test_kms_encryption(pulumi_mocks: RecordingMocks) -> None:
    deploy({"name": "serving", "kms_key_arn": stacks.KMS_KEY})
    assert pulumi_mocks.one(REPOSITORY).inputs["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": stacks.KMS_KEY}
    ]


def test_lifecycle_rules_in_ascending_priority(pulumi_mocks: RecordingMocks) -> None:
    deploy(
        {
            "name": "serving",
            "untagged_expiry_days": 7,
            "keep_releases": 5,
            "release_tag_patterns": ["*.*.*", "release-*"],
            "protected_tags": ["1.4.0", "1.5.2"],
        }
    )

    lifecycle = pulumi_mocks.one(LIFECYCLE)
    assert lifecycle.parent is not None
    assert lifecycle.parent.endswith("EcrRepository::serving")
    assert lifecycle.inputs["repository"] == "serving"
    rules = json.loads(lifecycle.inputs["policy"])["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2, 3, 4, 5]
    assert [r["selection"].get("tagPatternList") for r in rules] == [
        ["1.4.0"],
        ["1.5.2"],
        None,
        ["*.*.*"],
        ["release-*"],
    ]
    assert rules[2]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }
    assert all(r["action"] == {"type": "expire"} for r in rules)


def _images(*tags: str) -> list[Image]:
    """One image per tag, pushed a day apart (the last is the newest)."""
    return [
        Image(f"sha256:{i:064x}", pushed_day=i, tags=(t,) if t else ()) for i, t in enumerate(tags)
    ]


def test_release_rules_match_the_projects_version_tags() -> None:
    """Item 7. The stacks tag releases ``1.5.2``; a ``tagPrefixList: ["v"]`` rule (today's
    default) selects none of them, so "keep the last N releases" never runs. With
    ``tagPatternList: ["*.*.*"]`` ECR keeps the newest N (LifecyclePolicies.html evaluation
    rules, applied by tests/infra/aws/ecr_lifecycle.py)."""
    args = EcrRepositoryArgs(name="serving", keep_releases=2)
    images = _images("1.0.0", "1.1.0", "1.2.0", "1.3.0")
    assert expired(lifecycle_policy(args), images, today=10) == {images[0].digest, images[1].digest}


def test_an_image_a_stack_references_never_expires() -> None:
    """Item 7. The release a stack runs (and the one it would roll back to) are protected by
    a higher-priority rule per tag: "An image that matches the tagging requirements of a rule
    cannot be expired by a rule with a lower priority". An image copied by digest without a
    tag is what the untagged rule expires, so copies carry their release tag."""
    args = EcrRepositoryArgs(name="serving", keep_releases=1, protected_tags=("1.0.0",))
    images = _images("1.0.0", "1.1.0", "1.2.0", "")
    gone = expired(lifecycle_policy(args), images, today=100)
    assert images[0].digest not in gone  # old, but a stack references it
    assert images[1].digest in gone  # beyond the newest release, unreferenced
    assert images[3].digest in gone  # untagged: a bare digest copy would vanish


def test_no_workflow_pushes_a_mutable_tag() -> None:
    """Item 7. Tags are immutable (``IMMUTABLE``): pushing ``latest`` (or any tag) twice fails.
    No workflow or script may push a tag that repeats; only the local build tags ``latest``."""
    root = Path(__file__).resolve().parents[3]
    scripts = [*root.glob(".github/workflows/*.yml"), root / "Makefile", *root.glob("**/*.sh")]
    for path in scripts:
        if ".venv" in path.parts:
            continue
        for line in path.read_text().splitlines():
            if any(
                verb in line for verb in ("docker push", "podman push", "crane copy", "crane push")
            ):
                assert ":latest" not in line, f"{path.name}: {line.strip()}"


def test_cross_account_pull_only(pulumi_mocks: RecordingMocks) -> None:
    deploy({"name": "serving", "pull_account_ids": ["111111111111", "222222222222"]})

    policy = json.loads(pulumi_mocks.one(PULL_POLICY).inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {
        "AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]
    }
    assert statement["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]


class _LiveRepository(RecordingMocks):
    """Mocks whose account already holds the repository, encrypted with ``live_key``."""

    def __init__(self, live_key: str | None) -> None:
        super().__init__()
        self.live_key = live_key

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "aws:ecr/getRepositories:getRepositories":
            return {"names": ["serving"], "id": "x"}
        if args.token == "aws:ecr/getRepository:getRepository":
            kind = "KMS" if self.live_key else "AES256"
            return {
                "name": "serving",
                "encryptionConfigurations": [
                    {"encryptionType": kind, "kmsKey": self.live_key or ""}
                ],
            }
        return super().call(args)


@pytest.mark.parametrize(("live", "wanted"), [(None, stacks.KMS_KEY), (stacks.KMS_KEY, None)])
def test_an_encryption_change_is_refused_not_replaced(live: str | None, wanted: str | None) -> None:
    """Item 8: ``encryption_configuration`` is ForceNew in the provider
    (internal/service/ecr/repository.go): pulumi-aws would replace the repository, deleting
    its images. The live encryption is read first and a change fails with the key named."""
    config: dict[str, Any] = {"name": "serving", **({"kms_key_arn": wanted} if wanted else {})}
    with (
        mocked(_LiveRepository(live)),
        pytest.raises(Exception, match=r"ecr\.kms_key_arn") as caught,
    ):
        deploy(config)
    assert "cannot change a repository's encryption" in str(caught.value)


def test_the_same_encryption_passes() -> None:
    mocks = _LiveRepository(stacks.KMS_KEY)
    with mocked(mocks):
        deploy({"name": "serving", "kms_key_arn": stacks.KMS_KEY})
    assert mocks.one(REPOSITORY).inputs["encryptionConfigurations"][0]["kmsKey"] == stacks.KMS_KEY


def test_production_protects_the_repository(pulumi_mocks: RecordingMocks) -> None:
    """Item 8: ``protect``: Pulumi refuses to delete or replace it."""
    deploy({"name": "serving", "protect": True})
    assert pulumi_mocks.by_name["serving"].protect is True
