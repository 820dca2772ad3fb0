"""The ArtifactRegistry component under Pulumi's mocks."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.gcp.artifact_registry import ArtifactRegistry
from infra.gcp.config import artifact_registry_args_from_config
from infra.stack.mocks import GCP_PROJECT_NUMBER, RecordingMocks

REPOSITORY = "gcp:artifactregistry/repository:Repository"
SERVICE = "gcp:projects/service:Service"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
AGENT = "gcp:projects/serviceIdentity:ServiceIdentity"
KEY = "projects/ml-project/locations/us-central1/keyRings/ml/cryptoKeys/images"
READER_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
READER = "serviceAccount:gke-nodes@ml-shared.iam.gserviceaccount.com"


NAMED = {"region": "us-central1", "repository_id": "serving"}


def declare(base: dict[str, Any] = NAMED, **config: Any) -> dict[str, Any]:
    """Declare the component; returns its outputs once resolved."""
    args = artifact_registry_args_from_config({"project": "ml-project", **base, **config})
    seen: dict[str, Any] = {}

    def program() -> Any:
        registry = ArtifactRegistry("images", args)
        return registry.image_prefix.apply(lambda prefix: seen.update(image_prefix=prefix))

    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    return seen


def test_docker_repository_with_immutable_tags_cleanup_cmek_and_scanning(
    pulumi_mocks: RecordingMocks,
) -> None:
    outputs = declare(kms_key_name=KEY, delete_untagged_after_days=14, keep_recent_versions=5)

    repository = pulumi_mocks.one(REPOSITORY).inputs
    assert repository["format"] == "DOCKER"
    assert repository["location"] == "us-central1"
    assert repository["repositoryId"] == "serving"
    assert repository["dockerConfig"] == {"immutableTags": True}
    assert repository["kmsKeyName"] == KEY
    assert repository["cleanupPolicyDryRun"] is False
    assert repository["cleanupPolicies"] == [
        {
            "id": "delete-untagged",
            "action": "DELETE",
            "condition": {"tagState": "UNTAGGED", "olderThan": f"{14 * 86400}s"},
        },
        {"id": "keep-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 5}},
    ]
    assert repository["vulnerabilityScanningConfig"] == {"enablementConfig": "INHERITED"}
    services = {r.inputs["service"]: r for r in pulumi_mocks.of_type(SERVICE)}
    assert set(services) == {
        "containerscanning.googleapis.com",
        "artifactregistry.googleapis.com",
        "cloudkms.googleapis.com",
    }
    assert all(s.inputs["disableOnDestroy"] is False for s in services.values())
    # The repository waits for its APIs and for its service agent's use of the key.
    grant = pulumi_mocks.one(KEY_GRANT)
    assert grant.inputs["cryptoKeyId"] == KEY
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant.inputs["member"] == (
        f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
    )
    agent = pulumi_mocks.one(AGENT)
    assert agent.inputs == {"project": "ml-project", "service": "artifactregistry.googleapis.com"}
    waits_for = set(pulumi_mocks.one(REPOSITORY).dependencies)
    kms = services.pop("cloudkms.googleapis.com")
    assert {grant.urn, *(s.urn for s in services.values())} <= waits_for
    assert {kms.urn, agent.urn} <= set(grant.dependencies)
    assert outputs["image_prefix"] == "us-central1-docker.pkg.dev/ml-project/serving"


def test_scanning_and_cleanup_can_be_turned_off(pulumi_mocks: RecordingMocks) -> None:
    declare(
        vulnerability_scanning=False,
        delete_untagged_after_days=None,
        keep_recent_versions=None,
        immutable_tags=False,
    )

    repository = pulumi_mocks.one(REPOSITORY).inputs
    assert repository["vulnerabilityScanningConfig"] == {"enablementConfig": "DISABLED"}
    assert "cleanupPolicies" not in repository
    assert repository["dockerConfig"] == {"immutableTags": False}
    # No scanning API, and without a key neither Cloud KMS nor a key grant.
    assert [r.inputs["service"] for r in pulumi_mocks.of_type(SERVICE)] == [
        "artifactregistry.googleapis.com"
    ]
    assert pulumi_mocks.of_type(KEY_GRANT) == []
    assert pulumi_mocks.of_type(AGENT) == []


def test_the_repository_waits_for_the_apis_a_new_project_lacks(
    pulumi_mocks: RecordingMocks,
) -> None:
    """On a new project the Artifact Registry API is off ("Enable the Artifact Registry API"
    is the first step of Artifact Registry's quickstarts) and creating a repository fails
    until it is on; ``gcp.projects.Service`` (terraform-provider-google
    ``resourcemanager/resource_google_project_service.go``) turns it on, and the repository
    depends on it so the engine creates it first."""
    declare()
    repository = pulumi_mocks.one(REPOSITORY)
    services = {s.inputs["service"]: s.urn for s in pulumi_mocks.of_type(SERVICE)}
    assert set(services.values()) <= set(repository.dependencies)
    assert "artifactregistry.googleapis.com" in services


def test_a_gcr_host_is_a_docker_repository_named_after_it_in_its_multi_region(
    pulumi_mocks: RecordingMocks,
) -> None:
    """Artifact Registry documentation, "gcr.io repositories": ``eu.gcr.io`` is served by the
    repository ``eu.gcr.io`` in ``europe``. The provider takes a dotted ``repository_id`` as it
    is (terraform-provider-google ``resource_artifact_registry_repository.go``: no validation on
    ``repository_id``; ``repository_id`` and ``location`` are ``ForceNew``)."""
    key = "projects/ml-project/locations/europe/keyRings/ml/cryptoKeys/images"
    outputs = declare(
        {"gcr_host": "eu.gcr.io"},
        kms_key_name=key,
        delete_untagged_after_days=14,
        keep_recent_versions=5,
        labels={"team": "ml"},
        readers=[READER],
    )

    repository = pulumi_mocks.one(REPOSITORY).inputs
    assert repository["format"] == "DOCKER"
    assert (repository["repositoryId"], repository["location"]) == ("eu.gcr.io", "europe")
    assert repository["project"] == "ml-project"
    # The same options as any other repository:
    assert repository["dockerConfig"] == {"immutableTags": True}
    assert repository["kmsKeyName"] == key
    assert [p["id"] for p in repository["cleanupPolicies"]] == ["delete-untagged", "keep-recent"]
    assert repository["vulnerabilityScanningConfig"] == {"enablementConfig": "INHERITED"}
    assert repository["labels"] == {"team": "ml"}
    # IAM on the repository, as for any other (replacing Container Registry's bucket grants):
    # terraform-provider-google iam_artifact_registry_repository.go names the repository by
    # project, location and repository.
    [reader] = pulumi_mocks.of_type(READER_MEMBER)
    assert {k: reader.inputs[k] for k in ("project", "location", "repository", "role")} == {
        "project": "ml-project",
        "location": "europe",
        "repository": "eu.gcr.io",
        "role": "roles/artifactregistry.reader",
    }
    assert reader.inputs["member"] == READER
    assert outputs["image_prefix"] == "eu.gcr.io/ml-project"
