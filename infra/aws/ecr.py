"""``EcrRepository``: where the serving image lives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.config import EcrRepositoryArgs
from infra.validation import ConfigError, validate

#: What a puller needs, nothing more.
PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)


def _rule(description: str, selection: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "selection": selection, "action": {"type": "expire"}}


def lifecycle_policy(args: EcrRepositoryArgs) -> str:
    """The lifecycle policy document, rules in ascending priority.

    ECR applies rules by ascending priority, and "an image that matches the tagging requirements
    of a rule cannot be expired by a rule with a lower priority" (LifecyclePolicies.html):

    1. one rule per tag a stack references (``protected_tags``) that keeps its single image:
       no later rule can expire an image serving a release or its rollback target;
    2. untagged images expire after ``untagged_expiry_days`` — so images must arrive tagged:
       copy them by digest *to their release tag* (``crane copy SRC@sha256:... DST:1.5.2``),
       never to a bare digest, or this rule deletes what serves;
    3. per release pattern (several patterns in one rule are ANDed by ECR, so one rule each),
       the newest ``keep_releases`` images are kept and older ones expire.

    Other tags never expire. ECR returns rules sorted by priority; emitting them in that order
    keeps previews free of spurious diffs.
    """
    rules = [
        _rule(
            f"keep {tag}: a stack references it",
            {
                "tagStatus": "tagged",
                "tagPatternList": [tag],
                "countType": "imageCountMoreThan",
                "countNumber": 1,
            },
        )
        for tag in sorted(set(args.protected_tags))
    ]
    rules.append(
        _rule(
            f"expire untagged images after {args.untagged_expiry_days} days",
            {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": args.untagged_expiry_days,
            },
        )
    )
    rules += [
        _rule(
            f"keep the last {args.keep_releases} releases tagged {pattern}",
            {
                "tagStatus": "tagged",
                "tagPatternList": [pattern],
                "countType": "imageCountMoreThan",
                "countNumber": args.keep_releases,
            },
        )
        for pattern in args.release_tag_patterns
    ]
    numbered = [{"rulePriority": i, **rule} for i, rule in enumerate(rules, start=1)]
    return json.dumps({"rules": numbered})


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

    ECR cannot change a repository's encryption: pulumi-aws would replace the repository (the
    provider marks ``encryption_configuration`` ForceNew, internal/service/ecr/repository.go) and
    delete every image in it. So when the repository exists, its live encryption is read first
    and a different one in the stack is refused with a message, before anything is planned.
    ``protect`` (production) makes Pulumi refuse any delete or replacement.

    Outputs: ``repository_url``, ``arn``, ``name``, ``kms_key_arn``.
    """

    repository_url: pulumi.Output[str]
    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str | None]

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
        _refuse_encryption_change(args, config_key, self)
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
            # adopt: import the live repository by its ID instead of creating it (Pulumi's
            # ``import`` option: the stack's settings must match it, or the import is refused)
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, import_=args.import_id),
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
        self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)
        self.register_outputs(
            {"repository_url": self.repository_url, "arn": self.arn, "name": self.name}
        )


def _encryption_of(configurations: Any) -> tuple[str, str | None]:
    """(type, key) of a live repository's encryption configuration."""
    for configuration in configurations or []:
        kind = str(configuration.encryption_type or "AES256")
        return kind, (configuration.kms_key or None) if kind == "KMS" else None
    return "AES256", None


def _refuse_encryption_change(
    args: EcrRepositoryArgs, config_key: str, parent: pulumi.Resource
) -> None:
    """Fail the program if the repository exists with another encryption than ``args`` asks
    (an exception in an apply fails ``pulumi preview`` and ``up``)."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    wanted = ("KMS", args.kms_key_arn) if args.kms_key_arn else ("AES256", None)

    def check(names: list[str] | None) -> None:
        if args.name not in (names or []):
            return
        live = aws.ecr.get_repository_output(name=args.name, opts=invoke)

        def compare(configurations: Any) -> None:
            found = _encryption_of(configurations)
            if found != wanted:
                raise ConfigError(
                    f"{config_key}.kms_key_arn",
                    f"repository {args.name} exists encrypted with "
                    f"{found[1] or found[0]}; ECR cannot change a repository's encryption and "
                    "replacing it would delete its images. Keep "
                    f"{found[1] or 'no key (AES256)'}, or create a repository under a new name "
                    "and copy the images to it by digest with their tags",
                    args.kms_key_arn,
                )

        live.encryption_configurations.apply(compare)

    aws.ecr.get_repositories_output(opts=invoke).names.apply(check)
