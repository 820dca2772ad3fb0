"""Where the model deployments go (a stack's ``ml-endpoints:cluster``):

- ``type: eks`` — :class:`~infra.clusters.eks.EksCluster` (new EKS cluster with GPU nodes)
- ``type: gke`` — :class:`~infra.clusters.gke.GkeCluster` (new GKE cluster with GPU nodes)
- ``type: existing`` — :class:`~infra.clusters.existing.ExistingCluster` (kubeconfig/context)
- ``type: render`` — :class:`~infra.clusters.render.ManifestDirectory` (YAML for GitOps)

:func:`declare_cluster` builds the matching component; each offers ``provider`` (give it to
``ModelDeployment``) and ``service_account_annotations`` (the model server's cloud identity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel

from infra.clusters.eks import EksCluster, EksClusterArgs
from infra.clusters.existing import ExistingCluster, ExistingClusterArgs
from infra.clusters.gke import GkeCluster, GkeClusterArgs
from infra.clusters.render import ManifestDirectory, RenderArgs
from infra.gcp.apis import ProjectApis
from infra.validation import validate

CONFIG_KEY = "cluster"

ClusterArgs = EksClusterArgs | GkeClusterArgs | ExistingClusterArgs | RenderArgs


class _Kind(BaseModel):
    type: Literal["eks", "gke", "existing", "render"]


class KubernetesTarget(Protocol):
    """What a ModelDeployment needs from wherever it goes."""

    @property
    def provider(self) -> k8s.Provider: ...

    @property
    def service_account_annotations(self) -> Mapping[str, pulumi.Input[str]]: ...

    @property
    def google_service_account(self) -> pulumi.Input[str] | None:
        """The Google service account the model pods act as (workload identity), which this
        stack grants read access on gs:// model buckets; None: the pods have none."""
        ...

    def node_pools_for(self, gpu: bool) -> Sequence[pulumi.Resource]:
        """The node pools this stack declares that run a workload's pods (GPU pods: the GPU
        pool): its Deployments depend on them. Empty for clusters run elsewhere."""
        ...


def load(data: Any) -> ClusterArgs:
    """Validate a ``cluster`` object: first its ``type``, then the fields of that type, so
    errors read ``cluster.subnet_ids`` rather than naming the union's branches."""
    kind = validate(
        _Kind, {"type": data.get("type")} if isinstance(data, dict) else data, CONFIG_KEY
    )
    if kind.type == "eks":
        return validate(EksClusterArgs, data, CONFIG_KEY)
    if kind.type == "gke":
        return validate(GkeClusterArgs, data, CONFIG_KEY)
    if kind.type == "existing":
        return validate(ExistingClusterArgs, data, CONFIG_KEY)
    return validate(RenderArgs, data, CONFIG_KEY)


def declare_cluster(
    name: str,
    args: ClusterArgs,
    opts: pulumi.ResourceOptions | None = None,
    *,
    apis: ProjectApis | None = None,
) -> KubernetesTarget:
    """The component for ``args``' type (a GKE cluster enables its APIs through ``apis``)."""
    if isinstance(args, EksClusterArgs):
        return EksCluster(name, args, opts)
    if isinstance(args, GkeClusterArgs):
        return GkeCluster(name, args, opts, apis=apis)
    if isinstance(args, ExistingClusterArgs):
        return ExistingCluster(name, args, opts)
    return ManifestDirectory(name, args, opts)
