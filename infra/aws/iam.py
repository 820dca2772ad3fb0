"""The endpoint's execution role, least privilege.

Granted: read the models' own S3 objects, pull from the given ECR repositories, write captured
data under the endpoint's capture prefix, write its own log group, publish metrics to one
namespace, use the given KMS keys, and (only with a VPC) manage its network interfaces.
No managed ``*FullAccess`` policies and no wildcard actions. Resource ``*`` remains only where
AWS offers no resource-level permission (``ecr:GetAuthorizationToken``,
``cloudwatch:PutMetricData`` — restricted by namespace condition — and ``ec2:Describe*``-style
reads, listed one by one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.config import S3_URI

LOG_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
)
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


@dataclass(frozen=True)
class ExecutionGrants:
    """Everything the role may touch, as plain values."""

    partition: str
    region: str
    account_id: str
    endpoint_name: str
    model_data_urls: tuple[str, ...]
    repository_arns: tuple[str, ...]
    metrics_namespace: str
    capture_s3_uri: str | None = None
    kms_key_arns: tuple[str, ...] = ()
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


def execution_policy(grants: ExecutionGrants) -> dict[str, Any]:
    """The role's inline policy document."""
    p, region, account = grants.partition, grants.region, grants.account_id
    log_group = f"arn:{p}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadModelArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": sorted({s3_object_arn(p, url) for url in grants.model_data_urls}),
        },
        {
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": list(ECR_PULL_ACTIONS),
            "Resource": sorted(set(grants.repository_arns)),
        },
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": list(LOG_ACTIONS),
            "Resource": [
                f"{log_group}{grants.endpoint_name}",
                f"{log_group}{grants.endpoint_name}:log-stream:*",
            ],
        },
        {
            "Sid": "PublishMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": grants.metrics_namespace}},
        },
    ]
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
    if grants.kms_key_arns:
        statements.append(
            {
                "Sid": "UseKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": sorted(set(grants.kms_key_arns)),
            }
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
