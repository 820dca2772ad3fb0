"""``ml-endpoints:gcp:ArtifactRegistry``: the Docker repository the serving image is pushed to.

A ``gcr.io`` repository (``gcr_host``) is declared like any other: a DOCKER repository whose
id is the host (``eu.gcr.io``) in the host's multi-region (``europe``). terraform-provider-google
sets no pattern on ``repository_id`` (``resource_artifact_registry_repository.go``: the API
decides; its own data-source tests read ``repository_id = "gcr.io"`` in ``location = "us"``), and
both ``repository_id`` and ``location`` are ``ForceNew``: changing either replaces the repository
and every image in it, which is why they are validated before anything is declared.
"""

from __future__ import annotations

import hashlib
import re

import pulumi
import pulumi_gcp as gcp

from infra.gcp.apis import (
    ARTIFACT_REGISTRY,
    CLOUD_KMS,
    CONTAINER_SCANNING,
    ProjectApis,
    apis_or_own,
)
from infra.gcp.config import ArtifactRegistryArgs

READER_ROLE = "roles/artifactregistry.reader"
KEY_ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
_DAY_SECONDS = 86_400


class ArtifactRegistry(pulumi.ComponentResource):
    """A Docker-format repository with immutable tags, cleanup policies, optional CMEK,
    vulnerability scanning and readers (``roles/artifactregistry.reader`` on the repository);
    the same for a ``gcr.io`` repository.

    The ``artifactregistry`` API (and ``cloudkms`` with a key) is enabled first
    (:mod:`infra.gcp.apis`). With ``kms_key_name`` the repository is created only after the
    project's Artifact Registry service agent exists (``gcp.projects.ServiceIdentity``: a new
    project has none until something asks for it) and holds
    ``roles/cloudkms.cryptoKeyEncrypterDecrypter`` on that key: Artifact Registry refuses to
    create a CMEK repository whose service agent cannot use the key ("Enable CMEK", Artifact
    Registry documentation). Granting it needs ``cloudkms.cryptoKeys.setIamPolicy`` on the key.
    """

    repository: gcp.artifactregistry.Repository
    image_prefix: pulumi.Output[str]
    """The image base, ``REGION-docker.pkg.dev/PROJECT/REPO`` or ``eu.gcr.io/PROJECT``: append
    ``/IMAGE:TAG``."""

    def __init__(
        self,
        name: str,
        args: ArtifactRegistryArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        apis: ProjectApis | None = None,
    ) -> None:
        super().__init__("ml-endpoints:gcp:ArtifactRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        enabled = apis_or_own(apis, self)
        registry_api = enabled.enable(args.project, ARTIFACT_REGISTRY)
        depends_on: list[pulumi.Resource] = list(registry_api)
        if args.kms_key_name is not None:
            depends_on.append(
                _key_grant(name, args.project, args.kms_key_name, enabled, registry_api, self)
            )
        if args.vulnerability_scanning:
            depends_on += enabled.enable(args.project, CONTAINER_SCANNING)
        self.repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            location=args.location,
            repository_id=args.repository,
            format="DOCKER",
            description=args.description,
            labels=args.labels or None,
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(
                immutable_tags=args.immutable_tags
            ),
            cleanup_policies=_cleanup_policies(args) or None,
            cleanup_policy_dry_run=args.cleanup_dry_run,
            kms_key_name=args.kms_key_name,
            vulnerability_scanning_config=gcp.artifactregistry.RepositoryVulnerabilityScanningConfigArgs(
                # INHERITED = scan with the project's Container Scanning API, enabled above.
                enablement_config="INHERITED" if args.vulnerability_scanning else "DISABLED"
            ),
            # adopt: import the live repository by its ID instead of creating it (Pulumi's
            # ``import`` option: the stack's settings must match it, or the import is refused)
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, import_=args.import_id),
        )
        for member in args.readers:
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-reader-{_slug(member)}",
                project=args.project,
                location=args.location,
                repository=self.repository.repository_id,
                role=READER_ROLE,
                member=member,
                opts=child,
            )
        # From the repository's output, so that users of the base wait for the repository.
        self.image_prefix = self.repository.repository_id.apply(lambda _: args.image_base)
        self.register_outputs(
            {"image_prefix": self.image_prefix, "repository_id": self.repository.repository_id}
        )


def _key_grant(
    name: str,
    project: str,
    key: str,
    apis: ProjectApis,
    registry_api: list[pulumi.Resource],
    parent: pulumi.Resource,
) -> pulumi.Resource:
    """The project's Artifact Registry service agent, allowed to use ``key`` (class doc)."""
    agent = gcp.projects.ServiceIdentity(
        f"{name}-service-agent",
        project=project,
        service=ARTIFACT_REGISTRY,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=registry_api),
    )
    return gcp.kms.CryptoKeyIAMMember(
        f"{name}-service-agent-key",
        crypto_key_id=key,
        role=KEY_ROLE,
        member=agent.member,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=apis.enable(project, CLOUD_KMS)),
    )


def _slug(member: str) -> str:
    """A resource name part for ``member`` that stays the same when the list is reordered."""
    readable = re.sub(r"[^A-Za-z0-9-]+", "-", member.removeprefix("serviceAccount:"))[:40]
    return f"{readable.strip('-')}-{hashlib.sha256(member.encode()).hexdigest()[:6]}"


def _cleanup_policies(
    args: ArtifactRegistryArgs,
) -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgs]:
    """Delete untagged images after N days, but always keep the N most recent versions
    (KEEP policies win over DELETE ones)."""
    policies = []
    if args.delete_untagged_after_days is not None:
        policies.append(
            gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                id="delete-untagged",
                action="DELETE",
                condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                    tag_state="UNTAGGED",
                    older_than=f"{args.delete_untagged_after_days * _DAY_SECONDS}s",
                ),
            )
        )
    if args.keep_recent_versions is not None:
        policies.append(
            gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                id="keep-recent",
                action="KEEP",
                most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                    keep_count=args.keep_recent_versions
                ),
            )
        )
    return policies
