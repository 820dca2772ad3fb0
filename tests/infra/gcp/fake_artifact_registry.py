"""A small in-memory fake of the Artifact Registry v1 REST API: what ``preflight`` reads.

Methods, as in the REST reference
(https://cloud.google.com/artifact-registry/docs/reference/rest/v1/projects.locations.repositories
and ``.../projects.locations.repositories.dockerImages``):

- ``repositories.get``: ``GET /v1/projects/P/locations/L/repositories/R``;
- ``dockerImages.get``: ``GET /v1/projects/P/locations/L/repositories/R/dockerImages/ID`` where
  ID is ``IMAGE@sha256:DIGEST`` with the image path URL-encoded (``team%2Fserving@sha256:...``):
  terraform-provider-google builds it the same way
  (``google/services/artifactregistry/data_source_artifact_registry_docker_image.go``:
  ``url.QueryEscape(imageName)`` then ``@digest``); a tag instead of a digest is refused with
  INVALID_ARGUMENT, as the service does (googleapis/google-cloud-java#9567);
- ``dockerImages.list``: ``GET .../repositories/R/dockerImages`` with ``pageSize`` and
  ``pageToken``; images carry their ``tags``.

``DockerImage`` answers have ``name`` (with the encoded id), ``uri``
(``LOCATION-docker.pkg.dev/P/R/IMAGE@sha256:...``), ``tags``, ``mediaType``, ``uploadTime``.
A ``gcr.io`` repository is one more repository, its id the host (``eu.gcr.io``) and its location
the host's multi-region (``europe``), read with the same names (terraform-provider-google reads
``projects/go-containerregistry/locations/us/repositories/gcr.io`` in
``data_source_artifact_registry_package_test.go``); nothing here maps hosts, so a test that puts
an image in the wrong repository sees it missing. A project listed with :meth:`deny` answers
403 PERMISSION_DENIED to everything. Not modelled: other formats, IAM beyond that switch,
``orderBy`` and ``filter``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from tests.infra.gcp.fake_google_api import ApiError, FakeGoogleApi

_REPOSITORY = r"projects/[^/]+/locations/[^/]+/repositories/[^/]+"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DEFAULT_PAGE = 100
UPLOAD_TIME = "2026-01-15T10:00:00Z"


@dataclass
class _Image:
    image: str
    digest: str
    tags: list[str] = field(default_factory=list)


class FakeArtifactRegistry(FakeGoogleApi):
    """Repositories and the Docker images in them; see the module docstring."""

    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("GET", rf"^/v1/({_REPOSITORY})$", "getRepository"),
        ("GET", rf"^/v1/({_REPOSITORY}/dockerImages/[^/]+)$", "getDockerImage"),
        ("GET", rf"^/v1/({_REPOSITORY})/dockerImages$", "listDockerImages"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.repositories: dict[str, list[_Image]] = {}
        self.denied: set[str] = set()

    # -- test controls --------------------------------------------------------------------------
    def add_repository(self, project: str, location: str, repository: str) -> str:
        """Create an empty DOCKER repository; returns its resource name."""
        name = f"projects/{project}/locations/{location}/repositories/{repository}"
        self.repositories.setdefault(name, [])
        return name

    def push(
        self, project: str, location: str, repository: str, image: str, digest: str, *tags: str
    ) -> None:
        """``docker push``: the image by digest, moving ``tags`` onto it."""
        assert _DIGEST.match(digest), digest
        images = self.repositories[self.add_repository(project, location, repository)]
        for other in images:
            if other.image == image:
                other.tags = [t for t in other.tags if t not in tags]
        found = next((i for i in images if i.image == image and i.digest == digest), None)
        if found is None:
            images.append(_Image(image, digest, list(tags)))
        else:
            found.tags = sorted({*found.tags, *tags})

    def deny(self, project: str) -> None:
        """Every call on ``project`` answers 403, as for a caller without read access."""
        self.denied.add(project)

    # -- methods --------------------------------------------------------------------------------
    def _repository(self, name: str) -> list[_Image]:
        project = name.split("/")[1]
        if project in self.denied:
            raise ApiError(
                403,
                f"Permission 'artifactregistry.repositories.get' denied on resource '{name}' "
                "(or it may not exist).",
            )
        images = self.repositories.get(name)
        if images is None:
            raise ApiError(404, f"Requested entity was not found. Repository {name}")
        return images

    def _getRepository(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        self._repository(name)
        return {"name": name, "format": "DOCKER", "mode": "STANDARD_REPOSITORY"}

    def _getDockerImage(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        repository, _, image_id = name.partition("/dockerImages/")
        images = self._repository(repository)
        encoded, at, digest = image_id.rpartition("@")
        if not at or not _DIGEST.match(digest):
            raise ApiError(400, "Request contains an invalid argument.")
        if "/" in encoded:
            raise ApiError(400, "Request contains an invalid argument.")
        for image in images:
            if quote(image.image, safe="") == encoded and image.digest == digest:
                return self._docker_image(repository, image)
        raise ApiError(404, f"Requested entity was not found. Image {name}")

    def _listDockerImages(
        self, parent: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        images = self._repository(parent)
        size = int(query.get("pageSize") or _DEFAULT_PAGE)
        start = int(query.get("pageToken") or 0)
        page = images[start : start + size]
        answer: dict[str, Any] = {"dockerImages": [self._docker_image(parent, i) for i in page]}
        if start + size < len(images):
            answer["nextPageToken"] = str(start + size)
        return answer

    @staticmethod
    def _docker_image(repository: str, image: _Image) -> dict[str, Any]:
        _, project, _, location, _, repository_id = repository.split("/")
        answer: dict[str, Any] = {
            "name": f"{repository}/dockerImages/{quote(image.image, safe='')}@{image.digest}",
            "uri": f"{location}-docker.pkg.dev/{project}/{repository_id}/{image.image}"
            f"@{image.digest}",
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "uploadTime": UPLOAD_TIME,
        }
        if image.tags:
            answer["tags"] = list(image.tags)
        return answer
