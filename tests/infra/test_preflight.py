"""Preflight against local stand-ins of the real services, driven by the real clients:
moto_server for ECR (``PutImage`` / ``DescribeImages``) and S3, gcp-storage-emulator for Cloud
Storage, and the Artifact Registry fake (``tests/infra/gcp/fake_artifact_registry.py``) for
``dockerImages.get`` / ``list``.

Each failure must be one line naming the stack key, the full URI (digests whole) and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from google.cloud import storage

from infra.preflight import (
    ARTIFACT_REGISTRY_ENDPOINT,
    Finding,
    Reference,
    Status,
    check,
    references,
)
from infra.registries import parse
from infra.stack.config import load_stack
from serving.cli import main
from tests import emulators
from tests.infra.gcp.fake_artifact_registry import FakeArtifactRegistry

ACCOUNT, REGION = emulators.AWS_ACCOUNT, emulators.AWS_REGION
ECR_REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/ml-endpoints/serving"
AR_REPOSITORY = "us-central1-docker.pkg.dev/ml-project/serving/team/ml-endpoints"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [],
    }
)
DIGEST = "sha256:" + hashlib.sha256(MANIFEST.encode()).hexdigest()
OTHER_DIGEST = "sha256:" + "e" * 64


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    with emulators.moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    with emulators.gcs(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture
def registry() -> Iterator[FakeArtifactRegistry]:
    fake = FakeArtifactRegistry().start()
    yield fake
    fake.stop()


@pytest.fixture
def clouds(
    moto: emulators.Emulator,
    gcs: emulators.Emulator,
    registry: FakeArtifactRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> FakeArtifactRegistry:
    """The default clients of ``infra.preflight`` pointed at moto, the GCS emulator and the
    Artifact Registry fake, as a user would point them with these variables."""
    emulators.use_moto(moto, monkeypatch)
    for key, value in gcs.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(ARTIFACT_REGISTRY_ENDPOINT, registry.url)
    return registry


def _push_to_ecr(tag: str = "1.6.0") -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName="ml-endpoints/serving")
    # ECR's digest is the sha256 of the manifest bytes; moto derives its own from the layers
    # unless told, so tell it the real one (ECR checks a given digest against the manifest).
    answer = ecr.put_image(
        repositoryName="ml-endpoints/serving",
        imageManifest=MANIFEST,
        imageTag=tag,
        imageDigest=DIGEST,
    )
    assert answer["image"]["imageId"]["imageDigest"] == DIGEST


def _s3_object(uri: str, body: bytes = b"model bytes") -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", region_name=REGION)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _gcs_object(uri: str, body: bytes = b"model bytes") -> None:
    bucket_name, _, name = uri.removeprefix("gs://").partition("/")
    client = storage.Client()
    bucket = client.lookup_bucket(bucket_name) or client.create_bucket(bucket_name)
    bucket.blob(name).upload_from_string(body)


def _image(repository: str, digest: str | None = DIGEST, tag: str = "1.6.0") -> Reference:
    image = parse(f"{repository}:{tag}" + (f"@{digest}" if digest else ""))
    return Reference("ml-endpoints:release.image.digest", image.text, image)


def _one(reference: Reference) -> Finding:
    [finding] = check([reference])
    return finding


# ------------------------------------------------------------------------------------ ECR


def test_an_image_pushed_to_ecr_passes_by_digest(clouds: FakeArtifactRegistry) -> None:
    _push_to_ecr()
    finding = _one(_image(ECR_REPOSITORY))
    assert finding.status is Status.OK, finding.detail
    assert "1.6.0" in finding.detail


def test_a_digest_missing_from_ecr_is_one_line_with_key_full_uri_and_what_to_do(
    clouds: FakeArtifactRegistry,
) -> None:
    _push_to_ecr()
    finding = _one(_image(ECR_REPOSITORY, OTHER_DIGEST))
    line = finding.line("stacks/Pulumi.prod.yaml")
    assert finding.status is Status.FAIL
    assert "\n" not in line
    assert line.startswith("FAIL stacks/Pulumi.prod.yaml: ml-endpoints:release.image.digest: ")
    assert f"{ECR_REPOSITORY}@{OTHER_DIGEST}" in line  # never cut to sha256:eee...
    assert "crane copy" in line
    assert "push" in line


def test_a_missing_ecr_repository_points_at_the_registries_phase(
    clouds: FakeArtifactRegistry,
) -> None:
    finding = _one(_image(ECR_REPOSITORY))
    assert finding.status is Status.FAIL
    assert "does not exist" in finding.detail
    assert "bootstrap" in finding.detail
    assert "pulumi import" in finding.detail


def test_an_unpinned_image_is_checked_by_tag(clouds: FakeArtifactRegistry) -> None:
    _push_to_ecr(tag="1.6.0")
    assert _one(_image(ECR_REPOSITORY, None, "1.6.0")).status is Status.OK
    missing = _one(_image(ECR_REPOSITORY, None, "1.7.0"))
    assert missing.status is Status.FAIL
    assert "tag 1.7.0" in missing.detail


# ------------------------------------------------------------------------------ artifacts


def test_s3_objects_and_folders_pass_and_a_missing_artifact_fails(
    clouds: FakeArtifactRegistry,
) -> None:
    _s3_object("s3://models/reranker/14/model.tar.gz")
    _s3_object("s3://models/reranker/15/model.joblib")
    found = check(
        [
            Reference("k.object", "s3://models/reranker/14/model.tar.gz"),
            Reference("k.folder", "s3://models/reranker/15"),
            Reference("k.missing", "s3://models/reranker/16/model.tar.gz"),
            Reference("k.prefix", "s3://models/reranker/1"),  # not a folder of 14 or 15
            Reference("k.bucket", "s3://no-such-bucket/model.tar.gz"),
        ]
    )
    status = {f.reference.key: (f.status, f.detail) for f in found}
    assert status["k.object"][0] is Status.OK
    assert status["k.folder"][0] is Status.OK
    assert "model.joblib" in status["k.folder"][1]
    assert status["k.missing"][0] is Status.FAIL
    assert "upload the model artifacts" in status["k.missing"][1]
    assert status["k.prefix"][0] is Status.FAIL
    assert status["k.bucket"][0] is Status.FAIL


def test_an_empty_s3_artifact_fails(clouds: FakeArtifactRegistry) -> None:
    _s3_object("s3://models/empty/model.tar.gz", b"")
    finding = _one(Reference("k", "s3://models/empty/model.tar.gz"))
    assert finding.status is Status.FAIL
    assert "empty" in finding.detail


def test_gcs_objects_and_folders_pass_and_a_missing_artifact_fails(
    clouds: FakeArtifactRegistry,
) -> None:
    _gcs_object("gs://gcs-models/reranker/14/model.joblib")
    found = check(
        [
            Reference("k.folder", "gs://gcs-models/reranker/14"),
            Reference("k.object", "gs://gcs-models/reranker/14/model.joblib"),
            Reference("k.missing", "gs://gcs-models/reranker/16"),
            Reference("k.bucket", "gs://no-such-gcs-bucket/reranker"),
        ]
    )
    status = {f.reference.key: (f.status, f.detail) for f in found}
    assert status["k.folder"][0] is Status.OK, status["k.folder"][1]
    assert status["k.object"][0] is Status.OK, status["k.object"][1]
    assert status["k.missing"][0] is Status.FAIL
    assert status["k.bucket"][0] is Status.FAIL
    assert "does not exist" in status["k.bucket"][1]


# ---------------------------------------------------------------------- Artifact Registry


def test_an_image_in_artifact_registry_passes_by_digest(clouds: FakeArtifactRegistry) -> None:
    clouds.push("ml-project", "us-central1", "serving", "team/ml-endpoints", DIGEST, "1.6.0")
    finding = _one(_image(AR_REPOSITORY))
    assert finding.status is Status.OK, finding.detail
    # The nested image path travels URL-encoded, as the API names it.
    assert clouds.calls[-1].target.endswith(f"/dockerImages/team%2Fml-endpoints@{DIGEST}")


def test_artifact_registry_failures_say_what_is_missing(clouds: FakeArtifactRegistry) -> None:
    clouds.push("ml-project", "us-central1", "serving", "team/ml-endpoints", DIGEST, "1.6.0")
    image = _one(_image(AR_REPOSITORY, OTHER_DIGEST))
    repository = _one(
        _image("us-central1-docker.pkg.dev/ml-project/other/team/ml-endpoints", DIGEST)
    )
    assert image.status is Status.FAIL
    assert f"digest {OTHER_DIGEST} is not in" in image.detail
    assert repository.status is Status.FAIL
    assert "does not exist" in repository.detail


def test_artifact_registry_without_read_access_says_which_role(
    clouds: FakeArtifactRegistry,
) -> None:
    clouds.push("ml-project", "us-central1", "serving", "team/ml-endpoints", DIGEST, "1.6.0")
    clouds.deny("ml-project")
    finding = _one(_image(AR_REPOSITORY))
    assert finding.status is Status.FAIL
    assert "roles/artifactregistry.reader" in finding.detail


def test_artifact_registry_tags_are_found_across_pages(clouds: FakeArtifactRegistry) -> None:
    for index in range(150):
        digest = "sha256:" + hashlib.sha256(str(index).encode()).hexdigest()
        clouds.push(
            "ml-project", "us-central1", "serving", "team/ml-endpoints", digest, f"v{index}"
        )
    assert _one(_image(AR_REPOSITORY, None, "v149")).status is Status.OK
    assert "listDockerImages" in clouds.methods()
    assert _one(_image(AR_REPOSITORY, None, "v150")).status is Status.FAIL


GCR_REPOSITORY = "eu.gcr.io/ml-project/team/ml-endpoints"


def test_a_gcr_image_is_read_from_the_gcr_repository_in_its_multi_region(
    clouds: FakeArtifactRegistry,
) -> None:
    """``eu.gcr.io/PROJECT/...`` is served by the repository ``eu.gcr.io`` in ``europe``
    (Artifact Registry documentation, "gcr.io repositories"), and read through the same API as
    any repository: ``dockerImages.get`` on ``projects/P/locations/europe/repositories/
    eu.gcr.io``, as terraform-provider-google reads ``repository_id = "gcr.io"`` in ``us``
    (``data_source_artifact_registry_docker_image_test.go``)."""
    clouds.push("ml-project", "europe", "eu.gcr.io", "team/ml-endpoints", DIGEST, "1.6.0")
    by_digest = _one(_image(GCR_REPOSITORY))
    assert by_digest.status is Status.OK, by_digest.detail
    assert clouds.calls[-1].target == (
        "projects/ml-project/locations/europe/repositories/eu.gcr.io/dockerImages/"
        f"team%2Fml-endpoints@{DIGEST}"
    )
    assert "repository eu.gcr.io (project ml-project, europe)" in by_digest.detail
    assert _one(_image(GCR_REPOSITORY, None, "1.6.0")).status is Status.OK


def test_a_gcr_image_is_not_found_in_another_hosts_repository(
    clouds: FakeArtifactRegistry,
) -> None:
    """The host picks the repository: an image in ``gcr.io`` (``us``) or in an ``eu.gcr.io``
    repository made in the wrong location does not serve ``eu.gcr.io/...``."""
    clouds.push("ml-project", "us", "gcr.io", "team/ml-endpoints", DIGEST, "1.6.0")
    clouds.push("ml-project", "us", "eu.gcr.io", "team/ml-endpoints", DIGEST, "1.6.0")
    assert _one(_image("gcr.io/ml-project/team/ml-endpoints")).status is Status.OK
    finding = _one(_image(GCR_REPOSITORY))
    assert finding.status is Status.FAIL
    assert finding.detail.startswith(
        "Artifact Registry repository eu.gcr.io (project ml-project, europe) does not exist, "
        "and nothing else serves eu.gcr.io/ml-project: Container Registry is shut down (no "
        "writes since 2025-03-18)"
    )
    assert "gcr_host: eu.gcr.io" in finding.detail
    assert "gcloud artifacts docker upgrade migrate --projects=ml-project" in finding.detail


def test_a_missing_digest_in_a_gcr_repository_says_how_to_copy_it(
    clouds: FakeArtifactRegistry,
) -> None:
    clouds.push("ml-project", "europe", "eu.gcr.io", "team/ml-endpoints", DIGEST, "1.6.0")
    finding = _one(_image(GCR_REPOSITORY, OTHER_DIGEST))
    assert finding.status is Status.FAIL
    assert f"digest {OTHER_DIGEST} is not in Artifact Registry repository eu.gcr.io" in (
        finding.detail
    )
    assert f"crane copy SOURCE_REPOSITORY@{OTHER_DIGEST} {GCR_REPOSITORY}" in finding.detail


def test_a_gke_target_reads_its_gcr_image_from_the_hosts_repository(
    clouds: FakeArtifactRegistry,
) -> None:
    """A Kubernetes target on GKE pulls ``asia.gcr.io/PROJECT/IMAGE`` from the repository
    ``asia.gcr.io`` in ``asia`` (Artifact Registry documentation, "gcr.io repositories"), and
    preflight reads that repository. A GKE-only stack has no ``repository`` key to declare it
    in, so a missing repository names the ``gcloud artifacts repositories create`` command
    (gcloud reference: ``REPOSITORY --location=LOCATION --repository-format=...``) as well."""
    image = "asia.gcr.io/ml-project/ml-endpoints"
    kubernetes = {"name": "reranker", "image_repository": image, "artifact_store": "gcs"}
    cluster = {"type": "gke", "project": "ml-project", "location": "asia-east1-a"}
    stack = load_stack(_stack(kubernetes=kubernetes, cluster=cluster), "Pulumi.gke.yaml")
    [reference] = [r for r in references(stack) if r.image is not None]
    assert reference.key == (
        "ml-endpoints:release.image.digest in ml-endpoints:kubernetes.image_repository"
    )

    [missing] = check([reference])
    assert missing.status is Status.FAIL
    assert missing.detail.startswith(
        "Artifact Registry repository asia.gcr.io (project ml-project, asia) does not exist"
    )
    assert (
        "gcloud artifacts repositories create asia.gcr.io --repository-format=docker "
        "--location=asia --project=ml-project"
    ) in missing.detail

    clouds.push("ml-project", "us", "gcr.io", "ml-endpoints", DIGEST, "1.6.0")
    assert check([reference])[0].status is Status.FAIL  # gcr.io does not serve asia.gcr.io
    clouds.push("ml-project", "asia", "asia.gcr.io", "ml-endpoints", DIGEST, "1.6.0")
    [found] = check([reference])
    assert found.status is Status.OK, found.detail
    assert clouds.calls[-1].target == (
        f"projects/ml-project/locations/asia/repositories/asia.gcr.io/dockerImages/"
        f"ml-endpoints@{DIGEST}"
    )


def test_registries_without_an_api_are_reported_not_passed(clouds: FakeArtifactRegistry) -> None:
    finding = _one(_image("ghcr.io/acme/ml-endpoints"))
    assert finding.status is Status.SKIP
    assert "ghcr.io" in finding.detail


# ------------------------------------------------------------------------ stack references


def _stack(**targets: Any) -> dict[str, Any]:
    release = {
        "model_name": "reranker",
        "image": {"tag": "1.6.0", "digest": DIGEST},
        "variants": [
            {
                "name": "champion",
                "model_version": "14",
                "weight": 100,
                "s3_uri": "s3://models/reranker/14/model.tar.gz",
                "gcs_uri": "gs://gcs-models/reranker/14",
            }
        ],
    }
    return {"ml-endpoints:release": release, **{f"ml-endpoints:{k}": v for k, v in targets.items()}}


def test_references_follow_the_enabled_targets() -> None:
    sagemaker = {
        "endpoint_name": "reranker",
        "image_repository": ECR_REPOSITORY,
        "compute": {"instance_type": "ml.m5.large"},
        "data_capture": {"destination_s3_uri": "s3://capture/reranker"},
    }
    vertex = {
        "enabled": False,
        "project": "ml-project",
        "region": "us-central1",
        "display_name": "reranker",
        "image_repository": AR_REPOSITORY,
    }
    stack = load_stack(_stack(sagemaker=sagemaker, vertex=vertex), "Pulumi.test.yaml")
    found = {r.key: r.uri for r in references(stack)}
    assert found == {
        "ml-endpoints:release.image.digest in ml-endpoints:sagemaker.image_repository": (
            f"{ECR_REPOSITORY}@{DIGEST}"
        ),
        "ml-endpoints:release.variants[0].s3_uri": "s3://models/reranker/14/model.tar.gz",
    }


# -------------------------------------------------------------------------------- command

STACK_FILE = f"""
config:
  ml-endpoints:release:
    model_name: reranker
    image: {{tag: 1.6.0, digest: "{DIGEST}"}}
    variants:
      - name: champion
        model_version: "14"
        weight: 100
        s3_uri: s3://models/reranker/14/model.tar.gz
        gcs_uri: gs://command-models/reranker/14
  ml-endpoints:sagemaker:
    endpoint_name: reranker
    image_repository: {ECR_REPOSITORY}
    compute: {{instance_type: ml.m5.large}}
    data_capture: {{destination_s3_uri: s3://capture/reranker}}
  ml-endpoints:kubernetes:
    name: reranker
    image_repository: {AR_REPOSITORY}
    artifact_store: gcs
    autoscaling: {{min_replicas: 1, max_replicas: 2}}
  ml-endpoints:cluster:
    type: existing
    context: test
    service_account_annotations:
      iam.gke.io/gcp-service-account: reranker@command.iam.gserviceaccount.com
"""


def test_the_command_checks_every_target_and_exits_1_on_a_failure(
    clouds: FakeArtifactRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.first.yaml").write_text(STACK_FILE)
    _push_to_ecr()
    _s3_object("s3://models/reranker/14/model.tar.gz")
    args = ["preflight", "--stack", "first", "--stacks-dir", str(tmp_path)]
    assert main(args) == 1  # the image is not in Artifact Registry, the GCS folder is empty
    out, err = capsys.readouterr()
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert [line.split(": ")[1] for line in failures] == [
        "ml-endpoints:release.image.digest in ml-endpoints:kubernetes.image_repository",
        "ml-endpoints:release.variants[0].gcs_uri",
    ]
    assert "2 of 4 checks failed" in err

    clouds.push("ml-project", "us-central1", "serving", "team/ml-endpoints", DIGEST, "1.6.0")
    _gcs_object("gs://command-models/reranker/14/model.joblib")
    assert main(args) == 0
    assert "4 checks, none failed" in capsys.readouterr().out


def test_an_invalid_stack_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text(STACK_FILE.replace("weight: 100", "weight: 90"))
    assert main(["preflight", "--stack", "bad", "--stacks-dir", str(tmp_path)]) == 2
    assert "add up to 100" in capsys.readouterr().err
