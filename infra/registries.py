"""Which registry holds an image, read from its reference: the one place that knows hosts.

A stack names images as ``REPOSITORY@sha256:DIGEST`` or ``REPOSITORY:TAG``. The host of the
repository says which registry holds the image and so which API can tell whether it exists:

=============================================  ==================  ==============================
host                                           registry            repository in that registry
=============================================  ==================  ==============================
``ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]``  Amazon ECR          the path (``team/serving``)
``LOCATION-docker.pkg.dev``                    Artifact Registry   ``PROJECT/REPOSITORY``; the
                                                                   rest of the path is the image
``gcr.io``, ``us.gcr.io``, ``eu.gcr.io``,      Artifact Registry   the repository named after the
``asia.gcr.io``                                                    host, in ``PROJECT`` (the first
                                                                   path segment, or two for a
                                                                   domain-scoped project) and the
                                                                   host's multi-region; the rest
                                                                   of the path is the image
anything else (``ghcr.io``, Docker Hub,        not known here      -
``mirror.gcr.io``, ``k8s.gcr.io``...)
=============================================  ==================  ==============================

Sources: ECR registry URLs (Amazon ECR User Guide, "Private registry concepts":
``aws_account_id.dkr.ecr.region.amazonaws.com``); Artifact Registry names (Artifact Registry
documentation, "Repository and image names": ``LOCATION-docker.pkg.dev/PROJECT-ID/REPOSITORY/
IMAGE``); ``gcr.io`` hosts (Artifact Registry documentation, "gcr.io repositories" under
"Transition from Container Registry": Container Registry is shut down since 2025-03-18, and the
``gcr.io`` domain is served by a DOCKER repository named after the host in the matching
multi-region, :data:`GCR_HOSTS`; terraform-provider-google's Artifact Registry data-source tests
read such a repository as ``project = "go-containerregistry"``, ``location = "us"``,
``repository_id = "gcr.io"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

_DIGEST = r"sha256:[0-9a-f]{64}"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_REFERENCE = re.compile(
    rf"^(?P<repository>[^@\s]+?)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<name>[a-z0-9][a-z0-9._/-]*)$"
)
_ARTIFACT_REGISTRY = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[a-z][a-z0-9.:-]*[a-z0-9])"
    r"/(?P<repository>[a-z0-9][a-z0-9-]*)/(?P<image>[a-z0-9][a-z0-9._/-]*)$"
)
CONTAINER_REGISTRY_SHUTDOWN = "2025-03-18"
"""Since then Container Registry takes no writes; ``gcr.io`` URLs work only where a ``gcr.io``
repository in Artifact Registry serves them."""
GCR_HOSTS: dict[str, str] = {
    "gcr.io": "us",
    "us.gcr.io": "us",
    "eu.gcr.io": "europe",
    "asia.gcr.io": "asia",
}
"""``gcr.io`` host -> the Artifact Registry multi-region of the repository that serves it (the
repository is named after the host)."""
_GCR = re.compile(
    r"^(?P<host>(?:[a-z]+\.)?gcr\.io)"
    r"/(?:(?P<domain>[a-z0-9-]+(?:\.[a-z0-9-]+)+)/)?(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"/(?P<image>[a-z0-9][a-z0-9._/-]*)$"
)
"""``HOST/PROJECT/IMAGE``; a domain-scoped project ``example.com:my-project`` is written
``HOST/example.com/my-project/IMAGE`` (project IDs have no dots, domains do)."""


class ImageReferenceError(ValueError):
    """Not an image reference this module can read."""


@dataclass(frozen=True)
class ImageReference:
    """One image as a stack names it; :attr:`text` is the full reference, never shortened."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def text(self) -> str:
        """``REPOSITORY@DIGEST`` when pinned, else ``REPOSITORY:TAG`` (reviewers check it whole)."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}" if self.tag else self.repository

    @property
    def host(self) -> str:
        return self.repository.split("/", 1)[0]


@dataclass(frozen=True)
class EcrImage:
    """An image in a private ECR registry: ``DescribeImages`` in ``region`` answers for it."""

    account: str
    region: str
    repository: str

    @property
    def where(self) -> str:
        return f"ECR repository {self.repository} (account {self.account}, {self.region})"


@dataclass(frozen=True)
class ArtifactRegistryImage:
    """An image in an Artifact Registry Docker repository: ``dockerImages.get`` answers."""

    project: str
    location: str
    repository: str
    image: str

    @property
    def repository_name(self) -> str:
        """``projects/P/locations/L/repositories/R``: the API's name of the repository."""
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    def image_name(self, digest: str) -> str:
        """The API's name of this image at ``digest`` (the image path URL-encoded)."""
        return f"{self.repository_name}/dockerImages/{quote(self.image, safe='')}@{digest}"

    @property
    def base(self) -> str:
        """Where the repository's images are pulled from, without the image path."""
        return image_base(self.project, self.location, self.repository)

    @property
    def where(self) -> str:
        return (
            f"Artifact Registry repository {self.repository} "
            f"(project {self.project}, {self.location})"
        )


@dataclass(frozen=True)
class UnknownRegistry:
    """A registry this project has no API client for (``ghcr.io``, Docker Hub, ...)."""

    host: str

    @property
    def where(self) -> str:
        return f"registry {self.host}"


Registry = EcrImage | ArtifactRegistryImage | UnknownRegistry


def parse(reference: str) -> ImageReference:
    """``REPOSITORY[:TAG][@DIGEST]`` -> its parts (a port in the host is not a tag)."""
    match = _REFERENCE.match(reference)
    if match is None or ":" in match["repository"].partition("/")[2]:
        raise ImageReferenceError(
            f"{reference!r} is not an image reference (REPOSITORY:TAG or REPOSITORY@sha256:...)"
        )
    return ImageReference(match["repository"], match["tag"], match["digest"])


def registry_of(repository: str) -> Registry:
    """Where the image ``repository`` (no tag or digest) lives."""
    if (ecr := _ECR.match(repository)) is not None:
        return EcrImage(ecr["account"], ecr["region"], ecr["name"])
    if (found := _ARTIFACT_REGISTRY.match(repository)) is not None:
        return ArtifactRegistryImage(
            found["project"], found["location"], found["repository"], found["image"]
        )
    gcr = _GCR.match(repository)
    if gcr is not None and gcr["host"] in GCR_HOSTS:
        host = gcr["host"]
        project = f"{gcr['domain']}:{gcr['project']}" if gcr["domain"] else gcr["project"]
        return ArtifactRegistryImage(project, GCR_HOSTS[host], host, gcr["image"])
    return UnknownRegistry(repository.split("/", 1)[0])


def image_base(project: str, location: str, repository: str) -> str:
    """The path an Artifact Registry repository's images are pulled from, ``/IMAGE`` to follow:
    ``eu.gcr.io/PROJECT`` for a ``gcr.io`` repository (named after its host), else
    ``LOCATION-docker.pkg.dev/PROJECT/REPOSITORY``."""
    if repository in GCR_HOSTS:
        return f"{repository}/{project.replace(':', '/')}"
    return f"{location}-docker.pkg.dev/{project}/{repository}"
