"""The service account Vertex AI runs the deployed models as, with the least it needs: read the
model artifacts in their buckets, write logs and metrics."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pulumi
import pulumi_gcp as gcp

PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
ARTIFACT_ROLE = "roles/storage.objectViewer"


def account_id_for(name: str) -> str:
    """A valid service account ID (6-30 chars, ``[a-z][a-z0-9-]*[a-z0-9]``) from a name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)
    account_id = f"{slug or 'ml'}-serving"
    return account_id[:30].rstrip("-") if len(account_id) > 30 else account_id


def bucket_of(uri: str) -> str:
    """``gs://bucket/path`` -> ``bucket``."""
    return uri.removeprefix("gs://").split("/", 1)[0]


def bucket_readers(
    prefix: str,
    uris: Iterable[str],
    member: pulumi.Input[str],
    parent: pulumi.Resource | None = None,
) -> list[pulumi.Resource]:
    """``roles/storage.objectViewer`` for ``member`` on the bucket of each ``gs://`` URI.

    Bucket-level, so it works wherever the bucket lives: a project-level role in the serving
    project reads nothing in another project's bucket. Granting it needs
    ``storage.buckets.setIamPolicy`` on the bucket (its owner's ``roles/storage.admin``)."""
    return [
        gcp.storage.BucketIAMMember(
            f"{prefix}-{bucket}",
            bucket=bucket,
            role=ARTIFACT_ROLE,
            member=member,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for bucket in sorted({bucket_of(uri) for uri in uris if uri.startswith("gs://")})
    ]


GKE_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
"""The Kubernetes service account annotation naming the Google service account its pods act as
(Workload Identity Federation for GKE)."""


class ModelServiceAccount:
    """Declares the account and its grants as children of ``parent``."""

    def __init__(
        self,
        name: str,
        *,
        project: str,
        account_id: str,
        artifact_uris: Iterable[str],
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        child = pulumi.ResourceOptions(parent=parent)
        self.account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=project,
            account_id=account_id,
            display_name="ml-endpoints Vertex AI serving",
            description="Runs the deployed models: reads artifacts, writes logs and metrics.",
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )
        member = pulumi.Output.concat("serviceAccount:", self.account.email)
        self.grants: list[pulumi.Resource] = [
            gcp.projects.IAMMember(
                f"{name}-{role.split('.')[-1].lower()}",
                project=project,
                role=role,
                member=member,
                opts=child,
            )
            for role in PROJECT_ROLES
        ]
        self.grants += bucket_readers(f"{name}-read", artifact_uris, member, parent)

    @property
    def email(self) -> pulumi.Output[str]:
        return self.account.email
