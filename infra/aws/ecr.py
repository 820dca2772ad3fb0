"""``EcrRepository``: where the serving image lives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.config import EcrRepositoryArgs
from infra.validation import validate

#: What a puller needs, nothing more.
PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)


def lifecycle_policy(args: EcrRepositoryArgs) -> str:
    """The lifecycle policy document, rules in ascending priority.

    ECR returns rules sorted by priority; emitting them in that order keeps previews free of
    spurious diffs. Untagged images expire after ``untagged_expiry_days``; of the images tagged
    with a release prefix only the newest ``keep_releases`` are kept. Other tags never expire.
    """
    rules = [
        {
            "rulePriority": 1,
            "description": f"expire untagged images after {args.untagged_expiry_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": args.untagged_expiry_days,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"keep the last {args.keep_releases} releases",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": list(args.release_tag_prefixes),
                "countType": "imageCountMoreThan",
                "countNumber": args.keep_releases,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": sorted(rules, key=lambda rule: int(rule["rulePriority"]))})


def pull_policy(account_ids: tuple[str, ...], partition: str) -> str:
    """Repository policy letting other accounts pull (and only pull)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CrossAccountPull",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": [f"arn:{partition}:iam::{account}:root" for account in account_ids]
                    },
                    "Action": list(PULL_ACTIONS),
                }
            ],
        }
    )


class EcrRepository(pulumi.ComponentResource):
    """A private ECR repository: scan on push, immutable tags, encrypted, lifecycle-managed.

    Outputs: ``repository_url``, ``arn``, ``name``.
    """

    repository_url: pulumi.Output[str]
    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: EcrRepositoryArgs | Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
        *,
        config_key: str = "ecr",
    ) -> None:
        if not isinstance(args, EcrRepositoryArgs):
            args = validate(EcrRepositoryArgs, args, config_key)
        super().__init__("ml-endpoints:aws:EcrRepository", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        encryption = aws.ecr.RepositoryEncryptionConfigurationArgs(
            encryption_type="KMS" if args.kms_key_arn else "AES256",
            kms_key=args.kms_key_arn,
        )
        repository = aws.ecr.Repository(
            resource_name,
            name=args.name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[encryption],
            force_delete=args.force_delete,
            tags=args.tags or None,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{resource_name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(args),
            opts=child,
        )
        if args.pull_account_ids:
            partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
            aws.ecr.RepositoryPolicy(
                f"{resource_name}-pull",
                repository=repository.name,
                policy=partition.partition.apply(lambda p: pull_policy(args.pull_account_ids, p)),
                opts=child,
            )
        self.repository_url = repository.repository_url
        self.arn = repository.arn
        self.name = repository.name
        self.register_outputs(
            {"repository_url": self.repository_url, "arn": self.arn, "name": self.name}
        )
