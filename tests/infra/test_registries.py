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
