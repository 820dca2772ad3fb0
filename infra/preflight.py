"""``ml-endpoints preflight --stack NAME``: what a stack deploys exists and can be read, checked
before ``pulumi preview`` and ``pulumi up``.

- Every image a target deploys is in its registry: by digest when the release pins one, else
  by tag. ECR answers through ``DescribeImages``, Artifact Registry through ``dockerImages.get``
  (by digest) and ``dockerImages.list`` (by tag); other registries are reported as not checked.
- Every model artifact a target loads exists and is readable. ``s3://`` is read with a one-byte
  ranged ``GetObject``, which needs ``s3:GetObject`` and, for an SSE-KMS object, ``kms:Decrypt``
  (a ``HeadObject`` would pass without the key). ``gs://`` is read one byte too. A URI that is
  not one object names a folder (``PREFIX/``), as the server reads it; the folder's first object
  is read.

The checks run as whoever runs preflight (CI's deploy role, or you), not as the serving
identity of each platform: a pass means the bytes are there for a reader with that access.

Each failure is one line: ``FILE: KEY: URI: what is wrong; what to do``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.registries import (
    CONTAINER_REGISTRY_SHUTDOWN,
    GCR_HOSTS,
    ArtifactRegistryImage,
    EcrImage,
    ImageReference,
    Registry,
    UnknownRegistry,
    registry_of,
)

if TYPE_CHECKING:
    from infra.stack.config import StackConfig

ARTIFACT_REGISTRY_ENDPOINT = "ML_ENDPOINTS_ARTIFACT_REGISTRY_ENDPOINT"
"""An ``http://HOST:PORT`` Artifact Registry API to use instead of Google's (a local fake),
with anonymous credentials; like ``AWS_ENDPOINT_URL`` and ``STORAGE_EMULATOR_HOST``."""
_WORKERS = 8


class Status(Enum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Reference:
    """One image or artifact a stack refers to, and the stack key it comes from."""

    key: str
    """``ml-endpoints:release.variants[0].s3_uri``; images also name the target's repository
    key (``ml-endpoints:release.image.digest in ml-endpoints:sagemaker.image_repository``)."""
    uri: str
    image: ImageReference | None = None


@dataclass(frozen=True)
class Finding:
    """The outcome of checking one reference."""

    reference: Reference
    status: Status
    detail: str

    def line(self, source: str) -> str:
        """``FAIL stacks/Pulumi.prod.yaml: KEY: URI: detail`` (URIs and digests in full)."""
        return f"{self.status.value:<4} {source}: {self.reference.key}: {self.reference.uri}: " + (
            self.detail
        )


class _Problem(Exception):
    """A check failed; the message says what is wrong and what to do."""


class _NotChecked(Exception):
    """A check that cannot be made here (a registry without an API client)."""


# ---------------------------------------------------------------------------- references

_TARGETS = ("sagemaker", "vertex", "kubernetes")


def references(stack: StackConfig) -> list[Reference]:
    """The images and artifacts the stack's enabled targets deploy, keyed as in the file."""
    release = stack.release
    image_key = "ml-endpoints:release.image." + ("digest" if release.image.digest else "tag")
    found: list[Reference] = []
    artifact_fields: list[str] = []
    for target in _TARGETS:
        settings = getattr(stack, target)
        if settings is None or not settings.enabled:
            continue
        image = ImageReference(settings.image_repository, release.image.tag, release.image.digest)
        found.append(
            Reference(f"{image_key} in ml-endpoints:{target}.image_repository", image.text, image)
        )
        artifact_fields.append(_artifact_field(target, settings))
    for index, variant in enumerate(release.variants):
        for field in dict.fromkeys(artifact_fields):
            uri = getattr(variant, field)
            if uri is not None:
                found.append(Reference(f"ml-endpoints:release.variants[{index}].{field}", uri))
    return found


def _artifact_field(target: str, settings: Any) -> str:
    """Which of a variant's artifact URIs ``target`` loads."""
    if target == "kubernetes":
        return f"{settings.artifact_store}_uri"
    return "s3_uri" if target == "sagemaker" else "gcs_uri"


# ------------------------------------------------------------------------------- clients


class Clients:
    """The cloud clients the checks use, made on first use (one ECR client per region).

    Endpoints and credentials come from the usual places: ``AWS_*`` variables and profiles
    (``AWS_ENDPOINT_URL`` for moto), Application Default Credentials
    (``STORAGE_EMULATOR_HOST`` for the GCS emulator) and :data:`ARTIFACT_REGISTRY_ENDPOINT`.
    """

    def __init__(self) -> None:
        self.ecr: Callable[[str], Any] = cache(self._ecr)
        self.s3: Callable[[], Any] = cache(self._s3)
        self.gcs: Callable[[], Any] = cache(self._gcs)
        self.artifact_registry: Callable[[], Any] = cache(self._artifact_registry)

    @staticmethod
    def _ecr(region: str) -> Any:
        import boto3

        return boto3.client("ecr", region_name=region)

    @staticmethod
    def _s3() -> Any:
        import boto3

        return boto3.client("s3")

    @staticmethod
    def _gcs() -> Any:
        from google.cloud import storage

        return storage.Client()  # anonymous when STORAGE_EMULATOR_HOST is set

    @staticmethod
    def _artifact_registry() -> Any:
        from google.cloud import artifactregistry_v1

        endpoint = os.environ.get(ARTIFACT_REGISTRY_ENDPOINT)
        if not endpoint:
            return artifactregistry_v1.ArtifactRegistryClient()
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return artifactregistry_v1.ArtifactRegistryClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=endpoint),
        )


# -------------------------------------------------------------------------------- checks


def check(references: Iterable[Reference], clients: Clients | None = None) -> list[Finding]:
    """Check every reference (in parallel, each distinct URI once), in the given order."""
    clients = clients or Clients()
    wanted = list(references)
    uris = list(dict.fromkeys(r.uri for r in wanted))
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(uris) or 1)) as pool:
        image_of = {r.uri: r.image for r in wanted}
        outcomes = dict(
            zip(uris, pool.map(lambda u: _outcome(u, image_of[u], clients), uris), strict=True)
        )
    return [Finding(r, *outcomes[r.uri]) for r in wanted]


def _outcome(uri: str, image: ImageReference | None, clients: Clients) -> tuple[Status, str]:
    try:
        detail = (
            _check_image(image, clients) if image is not None else _check_artifact(uri, clients)
        )
    except _Problem as exc:
        return Status.FAIL, str(exc)
    except _NotChecked as exc:
        return Status.SKIP, str(exc)
    return Status.OK, detail


# ---------------------------------------------------------------------------------- images


def _check_image(image: ImageReference, clients: Clients) -> str:
    registry = registry_of(image.repository)
    if isinstance(registry, EcrImage):
        return _ecr_image(image, registry, clients)
    if isinstance(registry, ArtifactRegistryImage):
        return _artifact_registry_image(image, registry, clients)
    assert isinstance(registry, UnknownRegistry)
    raise _NotChecked(
        f"not checked: preflight has no API client for {registry.where}; make sure the image "
        "is there before deploying"
    )


def _missing_image(image: ImageReference, where: str) -> _Problem:
    pinned = f"digest {image.digest}" if image.digest else f"tag {image.tag}"
    copy_hint = (
        f"copy it by digest from the registry it was built in: crane copy "
        f"SOURCE_REPOSITORY@{image.digest} {image.repository}"
        if image.digest
        else "push it"
    )
    return _Problem(
        f"{pinned} is not in {where}; build and push the image (stacks/README.md, "
        f"'First deployment'), or {copy_hint}"
    )


def _missing_repository(where: str, registry: Registry | None = None) -> _Problem:
    if isinstance(registry, ArtifactRegistryImage) and registry.repository in GCR_HOSTS:
        host, project = registry.repository, registry.project
        # A stack declares repositories in its Vertex target only; a Kubernetes-only (GKE)
        # stack needs the repository made outside it (gcloud artifacts repositories create).
        return _Problem(
            f"{where} does not exist, and nothing else serves {registry.base}: Container "
            f"Registry is shut down (no writes since {CONTAINER_REGISTRY_SHUTDOWN}); declare "
            f"the repository (ml-endpoints:vertex.repository.gcr_host: {host}) and create it "
            f"(make bootstrap STACK=...) or adopt it with pulumi import; or, outside the stack, "
            f"create it (gcloud artifacts repositories create {host} "
            f"--repository-format=docker --location={registry.location} --project={project}) "
            f"or move the project's images (gcloud artifacts docker upgrade migrate "
            f"--projects={project})"
        )
    return _Problem(
        f"{where} does not exist; create the registries first (make bootstrap STACK=...), or "
        "adopt an existing repository with pulumi import"
    )


def _ecr_image(image: ImageReference, registry: EcrImage, clients: Clients) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    wanted = {"imageDigest": image.digest} if image.digest else {"imageTag": image.tag}
    try:
        answer = clients.ecr(registry.region).describe_images(
            registryId=registry.account, repositoryName=registry.repository, imageIds=[wanted]
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ImageNotFoundException":
            raise _missing_image(image, registry.where) from None
        if code == "RepositoryNotFoundException":
            raise _missing_repository(registry.where) from None
        if code in {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"}:
            raise _Problem(
                f"cannot read {registry.where}: {code}; the identity running preflight needs "
                "ecr:DescribeImages on the repository"
            ) from None
        raise _Problem(f"ECR DescribeImages failed: {exc}") from None
    except BotoCoreError as exc:
        raise _Problem(f"cannot reach ECR in {registry.region}: {exc}") from None
    details = answer.get("imageDetails") or []
    if not details:
        raise _missing_image(image, registry.where)
    tags = ", ".join(details[0].get("imageTags") or []) or "untagged"
    return f"in {registry.where} ({tags})"


def _artifact_registry_image(
    image: ImageReference, registry: ArtifactRegistryImage, clients: Clients
) -> str:
    from google.api_core import exceptions

    client = clients.artifact_registry()
    try:
        if image.digest:
            found = client.get_docker_image(name=registry.image_name(image.digest))
            tags = list(found.tags)
        else:
            tags = _tagged(client, registry, image.tag or "")
    except exceptions.NotFound:
        try:
            client.get_repository(name=registry.repository_name)
        except exceptions.NotFound:
            raise _missing_repository(registry.where, registry) from None
        raise _missing_image(image, registry.where) from None
    except exceptions.Forbidden:  # PermissionDenied (gRPC) is a Forbidden (HTTP 403)
        raise _Problem(
            f"cannot read {registry.where}: permission denied; the identity running "
            "preflight needs roles/artifactregistry.reader on the repository"
        ) from None
    except exceptions.GoogleAPIError as exc:
        raise _Problem(f"Artifact Registry answered: {exc}") from None
    return f"in {registry.where} ({', '.join(tags) or 'untagged'})"


def _tagged(client: Any, registry: ArtifactRegistryImage, tag: str) -> list[str]:
    """The tags of the image carrying ``tag``; NotFound when no image does."""
    from google.api_core import exceptions

    suffix = "/dockerImages/" + registry.image_name("").rpartition("/dockerImages/")[2]
    for docker_image in client.list_docker_images(parent=registry.repository_name):
        if f"{docker_image.name.rpartition('@')[0]}@".endswith(suffix) and tag in docker_image.tags:
            return list(docker_image.tags)
    raise exceptions.NotFound(f"no image {registry.image} with tag {tag}")


# ------------------------------------------------------------------------------- artifacts


def _check_artifact(uri: str, clients: Clients) -> str:
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme == "s3":
        return _s3_artifact(uri, bucket, key, clients)
    if scheme == "gs":
        return _gcs_artifact(uri, bucket, key, clients)
    raise _NotChecked("not checked: only s3:// and gs:// artifacts are")


def _nothing_at(uri: str) -> _Problem:
    return _Problem(
        f"no object and no folder at {uri}; upload the model artifacts there, or correct the "
        "URI in the release"
    )


def _empty(uri: str) -> _Problem:
    return _Problem(f"{uri} is empty; upload the model artifacts again")


def _s3_artifact(uri: str, bucket: str, key: str, clients: Clients) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = clients.s3()
    try:
        try:
            size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
            target, what = key, "object"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
            contents = listing.get("Contents") or []
            if not contents:
                raise _nothing_at(uri) from None
            target, size, what = contents[0]["Key"], contents[0]["Size"], "folder"
        if size == 0:
            raise _empty(f"s3://{bucket}/{target}")
        s3.get_object(Bucket=bucket, Key=target, Range="bytes=0-0")["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchBucket"}:
            raise _Problem(f"bucket {bucket} does not exist; correct the URI") from None
        if code in {"403", "AccessDenied", "KMS.AccessDeniedException"}:
            raise _Problem(
                f"cannot read {uri} ({code}); the identity running preflight needs "
                "s3:GetObject (and kms:Decrypt when the object is encrypted with a KMS key)"
            ) from None
        raise _Problem(f"S3 answered: {exc}") from None
    except BotoCoreError as exc:
        raise _Problem(f"cannot reach S3: {exc}") from None
    return f"readable {what} ({size} bytes" + (f" in {target})" if what == "folder" else ")")


def _gcs_artifact(uri: str, bucket: str, name: str, clients: Clients) -> str:
    from google.api_core import exceptions

    client = clients.gcs()
    try:
        blob = client.bucket(bucket).get_blob(name) if name else None
        what = "object"
        if blob is None:
            prefix = name.rstrip("/") + "/" if name else ""
            blob = next(iter(client.list_blobs(bucket, prefix=prefix, max_results=1)), None)
            what = "folder"
        if blob is None:
            raise _nothing_at(uri)
        if not blob.size:
            raise _empty(f"gs://{bucket}/{blob.name}")
        blob.download_as_bytes(start=0, end=0)
    except exceptions.NotFound:
        raise _Problem(f"bucket {bucket} does not exist; correct the URI") from None
    except exceptions.Forbidden:
        raise _Problem(
            f"cannot read {uri}: permission denied; the identity running preflight needs "
            "storage.objects.get and storage.objects.list (roles/storage.objectViewer)"
        ) from None
    except exceptions.GoogleAPIError as exc:
        raise _Problem(f"Cloud Storage answered: {exc}") from None
    where = f" in {blob.name})" if what == "folder" else ")"
    return f"readable {what} ({blob.size} bytes{where}"


# ----------------------------------------------------------------------------------- command


def register(subparsers: Any) -> None:
    """``ml-endpoints preflight`` (an ``ml_endpoints.commands`` entry point)."""
    parser = subparsers.add_parser(
        "preflight",
        help="check that the images and model artifacts a stack deploys exist and are readable",
        description="Before pulumi preview or up: every image a target deploys is in its "
        "registry (ECR, Artifact Registry) by digest or tag, and every s3:// and gs:// model "
        "artifact exists and can be read by the identity running this command. One line per "
        "check; exit 1 if any fails, 2 if the stack file is invalid.",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--stacks-dir",
        type=Path,
        default=Path("stacks"),
        help="directory holding the stack files (default: stacks)",
    )
    parser.set_defaults(func=lambda args: run(args.stack, args.stacks_dir))


def run(stack: str, stacks_dir: Path) -> int:
    """Print one line per check; 0 when none failed, 1 when some did, 2 on an invalid stack."""
    from infra.stack.config import load_stack_file
    from infra.stack.files import stack_file
    from infra.validation import ConfigError

    source = str(stack_file(stack, stacks_dir))
    try:
        found = references(load_stack_file(stack, stacks_dir))
    except ConfigError as exc:
        print(f"ml-endpoints preflight: invalid configuration: {exc}", file=sys.stderr)
        return 2
    findings = check(found)
    for finding in findings:
        print(finding.line(source))
    failed = sum(f.status is Status.FAIL for f in findings)
    if failed:
        print(f"ml-endpoints preflight: {failed} of {len(findings)} checks failed", file=sys.stderr)
        return 1
    print(f"ml-endpoints preflight: {len(findings)} checks, none failed")
    return 0
