"""``ExistingCluster``: deploy to a cluster someone else runs, reached through a kubeconfig and
context from stack config."""

from __future__ import annotations

from typing import Annotated, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import AfterValidator, Field

from infra.gcp.service_account import GKE_IDENTITY_ANNOTATION
from infra.secret_values import Secret, revealed
from infra.validation import Frozen


def _not_empty(value: str | Secret) -> str | Secret:
    if not revealed(value):
        raise ValueError("must not be empty: a path or the kubeconfig's contents")
    return value


class ExistingClusterArgs(Frozen):
    """``ml-endpoints:cluster`` with ``type: existing``.

    ``kubeconfig`` is a path or the file's contents (keep the contents a Pulumi secret:
    ``pulumi config set --secret --path 'ml-endpoints:cluster.kubeconfig'``); left out, the
    provider reads ``$KUBECONFIG`` or ``~/.kube/config``. ``context`` picks one of its contexts.
    """

    type: Literal["existing"] = "existing"
    kubeconfig: Annotated[str | Secret, AfterValidator(_not_empty)] | None = None
    context: Annotated[str, Field(min_length=1)] | None = None
    service_account_annotations: dict[str, str] = {}
    """Identity for the model server's service account, e.g.
    ``eks.amazonaws.com/role-arn`` or ``iam.gke.io/gcp-service-account``."""


class ExistingCluster(pulumi.ComponentResource):
    """A Kubernetes provider for an existing cluster."""

    provider: k8s.Provider
    service_account_annotations: dict[str, str]

    def __init__(
        self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ml-endpoints:k8s:ExistingCluster", name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(revealed(args.kubeconfig)) if args.kubeconfig else None,
            context=args.context,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_account_annotations = dict(args.service_account_annotations)
        self.register_outputs({})

    @property
    def google_service_account(self) -> str | None:
        """The Google service account the annotations bind the pods to, if any."""
        return self.service_account_annotations.get(GKE_IDENTITY_ANNOTATION)

    def node_pools_for(self, gpu: bool) -> list[pulumi.Resource]:
        """None: this stack declares no nodes there."""
        return []
