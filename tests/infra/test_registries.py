"""Image references -> the registry that holds them (ECR registry URLs: Amazon ECR User Guide,
"Private registry concepts"; Artifact Registry: "Repository and image names")."""

from __future__ import annotations

import pytest

from infra.registries import (
    ArtifactRegistryImage,
    EcrImage,
    ImageReference,
    ImageReferenceError,
    UnknownRegistry,
    image_base,
    parse,
    registry_of,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repo.example/team/app:1.2.3", ImageReference("repo.example/team/app", "1.2.3")),
        (f"repo.example/app@{DIGEST}", ImageReference("repo.example/app", None, DIGEST)),
        (f"repo.example/app:1.2@{DIGEST}", ImageReference("repo.example/app", "1.2", DIGEST)),
        ("localhost:5000/app:1.0", ImageReference("localhost:5000/app", "1.0")),
    ],
)
def test_parse_reads_repository_tag_and_digest(text: str, expected: ImageReference) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["repo/app@sha256:abc", "repo/app:has/slash", "repo/a b:1"])
def test_parse_refuses_what_is_not_a_reference(text: str) -> None:
    with pytest.raises(ImageReferenceError, match="not an image reference"):
        parse(text)


def test_the_full_reference_is_kept_whole() -> None:
    assert parse(f"r.example/app:1.0@{DIGEST}").text == f"r.example/app@{DIGEST}"
    assert parse("r.example/app:1.0").text == "r.example/app:1.0"


def test_ecr_hosts_name_account_region_and_repository() -> None:
    assert registry_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/serving") == EcrImage(
        "123456789012", "eu-west-1", "team/serving"
    )
    assert registry_of("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/serving") == EcrImage(
        "123456789012", "cn-north-1", "serving"
    )


def test_artifact_registry_hosts_split_repository_and_image_path() -> None:
    found = registry_of("europe-west4-docker.pkg.dev/my-project/serving/team/ml-endpoints")
    assert found == ArtifactRegistryImage(
        "my-project", "europe-west4", "serving", "team/ml-endpoints"
    )
    assert isinstance(found, ArtifactRegistryImage)
    assert found.image_name(DIGEST) == (
        "projects/my-project/locations/europe-west4/repositories/serving/dockerImages/"
        f"team%2Fml-endpoints@{DIGEST}"
    )


@pytest.mark.parametrize(
    "repository",
    ["ghcr.io/acme/ml-endpoints", "docker.io/library/python", "us-docker.pkg.dev/p/only-repo"],
)
def test_other_hosts_are_unknown(repository: str) -> None:
    assert isinstance(registry_of(repository), UnknownRegistry)


# ------------------------------------------------------------------------------ gcr.io hosts
# Artifact Registry documentation, "gcr.io repositories" (Transition from Container Registry):
# the gcr.io domain is served by a DOCKER repository named after the host, in the host's
# multi-region. terraform-provider-google reads one the same way in its data-source tests
# (google/services/artifactregistry/data_source_artifact_registry_docker_image_test.go:
# project "go-containerregistry", location "us", repository_id "gcr.io", image "krane/debug").


@pytest.mark.parametrize(
    ("host", "location"),
    [("gcr.io", "us"), ("us.gcr.io", "us"), ("eu.gcr.io", "europe"), ("asia.gcr.io", "asia")],
)
def test_gcr_hosts_are_the_repository_named_after_the_host_in_its_multi_region(
    host: str, location: str
) -> None:
    found = registry_of(f"{host}/ml-project/team/ml-endpoints")
    assert found == ArtifactRegistryImage("ml-project", location, host, "team/ml-endpoints")
    assert isinstance(found, ArtifactRegistryImage)
    assert found.repository_name == (
        f"projects/ml-project/locations/{location}/repositories/{host}"
    )
    assert found.base == f"{host}/ml-project"


def test_a_gcr_image_is_named_like_any_artifact_registry_image() -> None:
    found = registry_of("gcr.io/go-containerregistry/krane/debug")
    assert isinstance(found, ArtifactRegistryImage)
    assert found.image_name(DIGEST) == (
        "projects/go-containerregistry/locations/us/repositories/gcr.io/dockerImages/"
        f"krane%2Fdebug@{DIGEST}"
    )
    assert found.where == "Artifact Registry repository gcr.io (project go-containerregistry, us)"


def test_a_domain_scoped_project_is_two_path_segments_on_gcr_hosts() -> None:
    """Project ``example.com:my-project`` is written ``gcr.io/example.com/my-project/...``."""
    found = registry_of("eu.gcr.io/example.com/my-project/serving")
    assert found == ArtifactRegistryImage(
        "example.com:my-project", "europe", "eu.gcr.io", "serving"
    )
    assert isinstance(found, ArtifactRegistryImage)
    assert found.base == "eu.gcr.io/example.com/my-project"


@pytest.mark.parametrize(
    "repository",
    [
        "mirror.gcr.io/library/python",  # Google's Docker Hub cache, not a project's repository
        "k8s.gcr.io/pause",
        "europe.gcr.io/ml-project/serving",  # not a Container Registry host
        "gcr.io/ml-project",  # a project, no image
        "gcr.io/ML-Project/serving",
    ],
)
def test_other_gcr_names_are_not_artifact_registry_repositories(repository: str) -> None:
    assert isinstance(registry_of(repository), UnknownRegistry)


def test_the_image_base_of_each_kind_of_repository() -> None:
    assert image_base("p-123456", "europe", "eu.gcr.io") == "eu.gcr.io/p-123456"
    assert image_base("p-123456", "europe-west4", "serving") == (
        "europe-west4-docker.pkg.dev/p-123456/serving"
    )
