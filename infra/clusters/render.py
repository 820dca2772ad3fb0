"""``ManifestDirectory``: the GitOps hand-off. Instead of applying objects to a cluster, the
Kubernetes provider writes them as YAML files to a directory that Argo CD or Flux then syncs.

Secrets are written to those files **in plain text** (base64 is no encryption): a warning says
so on every run. Keep that directory out of public repositories, or encrypt it (SOPS, Sealed
Secrets) before committing. Outputs that only a live cluster knows (status, generated names)
stay unknown in this mode.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from infra.gcp.service_account import GKE_IDENTITY_ANNOTATION
from infra.validation import Frozen

PLAIN_TEXT_WARNING = (
    "renders manifests to {directory!r} instead of applying them: any Secret is written there "
    "in plain text (base64). Do not commit that directory unencrypted"
)


class RenderArgs(Frozen):
    """``ml-endpoints:cluster`` with ``type: render``."""

    type: Literal["render"] = "render"
    directory: Annotated[str, Field(min_length=1)]
    """Where the YAML goes (relative to the Pulumi project directory)."""
    service_account_annotations: dict[str, str] = {}


class ManifestDirectory(pulumi.ComponentResource):
    """A Kubernetes provider that renders YAML into ``directory`` (``renderYamlToDirectory``)."""

    provider: k8s.Provider
    service_account_annotations: dict[str, str]

    def __init__(
        self, name: str, args: RenderArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ml-endpoints:k8s:ManifestDirectory", name, None, opts)
        pulumi.log.warn(
            f"ManifestDirectory {name}: "
            + PLAIN_TEXT_WARNING.format(directory=args.directory)
            + ".",
            resource=self,
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            render_yaml_to_directory=args.directory,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_account_annotations = dict(args.service_account_annotations)
        self.register_outputs({"directory": args.directory})

    @property
    def google_service_account(self) -> str | None:
        """The Google service account the annotations bind the pods to, if any."""
        return self.service_account_annotations.get(GKE_IDENTITY_ANNOTATION)

    def node_pools_for(self, gpu: bool) -> list[pulumi.Resource]:
        """None: this stack declares no nodes there."""
        return []
