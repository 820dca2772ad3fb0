"""EcrRepository under Pulumi mocks."""

from __future__ import annotations

import json
from typing import Any

from infra.aws.ecr import EcrRepository
from infra.stack.mocks import RecordingMocks
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare

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
            "release_tag_prefixes": ["v", "release-"],
        }
    )

    lifecycle = pulumi_mocks.one(LIFECYCLE)
    assert lifecycle.parent is not None
    assert lifecycle.parent.endswith("EcrRepository::serving")
    assert lifecycle.inputs["repository"] == "serving"
    rules = json.loads(lifecycle.inputs["policy"])["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2]
    assert rules[0]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }
    assert rules[1]["selection"] == {
        "tagStatus": "tagged",
        "tagPrefixList": ["v", "release-"],
        "countType": "imageCountMoreThan",
        "countNumber": 5,
    }
    assert all(r["action"] == {"type": "expire"} for r in rules)


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
