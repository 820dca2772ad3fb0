"""The Google APIs a stack needs, enabled by the stack itself, once per project.

A new project has almost no API enabled: the first ``pulumi up`` of a GKE cluster, an Artifact
Registry repository or a Vertex AI endpoint there fails with ``SERVICE_DISABLED`` unless
something enabled ``container``, ``artifactregistry``, ``aiplatform``, ``iam`` (service
accounts) and, for a CMEK key, ``cloudkms`` first (``containerscanning`` where a repository
scans its images). :class:`ProjectApis` declares one ``gcp.projects.Service`` per project and
API, shared by every component of the program, and each component makes what calls an API
depend on that API's resource.

``disable_on_destroy`` is false: terraform-provider-google
(``google/services/resourcemanager/resource_google_project_service.go``,
``resourceGoogleProjectServiceDelete``) disables the API when the resource is destroyed unless it
is false, which would turn it off for everything else in the project on ``pulumi destroy``.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

AIPLATFORM = "aiplatform.googleapis.com"
ARTIFACT_REGISTRY = "artifactregistry.googleapis.com"
CONTAINER = "container.googleapis.com"
IAM = "iam.googleapis.com"
CLOUD_KMS = "cloudkms.googleapis.com"
CONTAINER_SCANNING = "containerscanning.googleapis.com"


class ProjectApis:
    """``gcp.projects.Service`` per (project, API), declared on first use and then shared."""

    def __init__(self, parent: pulumi.Resource | None = None) -> None:
        self._parent = parent
        self._services: dict[tuple[str, str], gcp.projects.Service] = {}

    def enable(self, project: str, *apis: str) -> list[pulumi.Resource]:
        """The resources enabling ``apis`` in ``project``: depend on them."""
        enabled: list[pulumi.Resource] = []
        for api in apis:
            key = (project, api)
            if key not in self._services:
                self._services[key] = gcp.projects.Service(
                    f"{project}-{api.split('.')[0]}",
                    project=project,
                    service=api,
                    disable_on_destroy=False,
                    opts=pulumi.ResourceOptions(parent=self._parent),
                )
            enabled.append(self._services[key])
        return enabled


def apis_or_own(apis: ProjectApis | None, component: pulumi.Resource) -> ProjectApis:
    """The program's shared :class:`ProjectApis`, or one of the component's own when it is
    declared alone."""
    return apis if apis is not None else ProjectApis(parent=component)
