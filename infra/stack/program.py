"""The Pulumi program: every resource of a stack, declared from its typed configuration.

``pulumi up`` runs :func:`main` (through ``infra/program/__main__.py``): it reads the stack's
configuration as Pulumi hands it over, validates it once and :func:`run` declares it.
``ml-endpoints plan`` validates the stack file once and runs the same :func:`run` offline under
Pulumi's mocks (:mod:`infra.stack.plan`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from infra.secret_scan import secret_advice
from infra.secret_values import mark, secret_paths
from infra.stack.components import compose
from infra.stack.config import NAMESPACE, StackConfig, load_stack
from infra.stack.files import STACKS_DIR, StackError, load_document, stack_file


def read_config(stacks_dir: Path = STACKS_DIR) -> dict[str, Any]:
    """The stack's ``ml-endpoints:*`` configuration as Pulumi hands it to the program, with the
    values the stack file holds encrypted wrapped in :class:`~infra.secret_values.Secret`.

    ``Config.get_object`` returns a key decrypted, and Pulumi marks secretness per top-level key
    only; ``get_secret_object`` would make the whole key one secret Output (sizes and weights
    hidden too, and unusable where the components need plain values). So the stack file says
    which values are secret (:func:`~infra.secret_values.secret_paths`) and the components hand
    exactly those to resources as secret Outputs. A key Pulumi holds as secret that the stack
    file encrypts nothing of (a Pulumi ESC environment, or no stack file) is refused rather
    than passed on in plain text. Plain-text secrets are refused by
    :func:`~infra.stack.config.load_stack`.
    """
    path = stack_file(pulumi.get_stack(), stacks_dir)
    document = load_document(path) if path.exists() else {}
    encrypted = secret_paths(document.get("config") or {})
    config = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    for key in _project_keys():
        value = config.get_object(key)
        if value is None:
            continue
        full_key = f"{NAMESPACE}:{key}"
        if pulumi.runtime.is_config_secret(full_key) and not any(
            found[0] == full_key for found in encrypted
        ):
            raise StackError(
                f"{path}: {full_key}",
                "Pulumi holds this key as a secret, but the stack file encrypts none of its "
                "values (set from a Pulumi ESC environment?), so the program cannot tell which "
                f"values to keep secret; {secret_advice(full_key + '.PATH')}",
            )
        values[full_key] = value
    return mark(values, encrypted)


def _project_keys() -> list[str]:
    """Every ``ml-endpoints:*`` key the stack sets, so that a misspelt key reaches the schema
    (and fails there) instead of being ignored; the schema's keys when none is listed."""
    from pulumi.runtime.config import CONFIG, get_config_env

    present = {*CONFIG.get(), *(get_config_env() or {})}
    prefix = f"{NAMESPACE}:"
    keys = sorted(k.removeprefix(prefix) for k in present if k.startswith(prefix))
    return keys or list(StackConfig.model_fields)


def declare(stack: StackConfig) -> dict[str, pulumi.Output[Any]]:
    """Declare the enabled targets; returns the stack outputs."""
    components = compose(stack)
    outputs: dict[str, pulumi.Output[Any]] = {
        "release": pulumi.Output.from_input(
            {
                "model_name": stack.release.model_name,
                "image": stack.release.image.model_dump(exclude_none=True),
                "weights": stack.release.weights(),
            }
        )
    }
    if components.sagemaker is not None:
        from infra.aws.ecr import EcrRepository
        from infra.aws.sagemaker import SageMakerEndpoint

        repository = (
            EcrRepository("serving", components.ecr) if components.ecr is not None else None
        )
        endpoint = SageMakerEndpoint(
            "sagemaker",
            components.sagemaker,
            pulumi.ResourceOptions(depends_on=[repository] if repository else None),
            repository=repository,
        )
        outputs["sagemaker_endpoint"] = endpoint.endpoint_name
        outputs["sagemaker_weights"] = endpoint.variant_weights
        if repository is not None:
            outputs["ecr_repository_url"] = repository.repository_url
    # Every API a Google Cloud component needs, enabled once per project (infra/gcp/apis.py).
    from infra.gcp.apis import ProjectApis

    apis = ProjectApis()
    if components.vertex is not None:
        from infra.gcp.artifact_registry import ArtifactRegistry
        from infra.gcp.vertex import VertexEndpoint

        registry = (
            ArtifactRegistry("serving", components.artifact_registry, apis=apis)
            if components.artifact_registry is not None
            else None
        )
        vertex = VertexEndpoint(
            "vertex",
            components.vertex,
            pulumi.ResourceOptions(depends_on=[registry] if registry else None),
            apis=apis,
        )
        outputs["vertex_endpoint"] = vertex.endpoint_name
        outputs["vertex_traffic"] = pulumi.Output.from_input(components.vertex.split)
        if registry is not None:
            outputs["artifact_registry"] = registry.image_prefix
    if components.kubernetes is not None and components.cluster is not None:
        from infra.clusters.config import declare_cluster
        from infra.gcp.service_account import bucket_readers
        from infra.k8s.model_deployment import ModelDeployment

        cluster = declare_cluster("cluster", components.cluster, apis=apis)
        reader = cluster.google_service_account
        # Read access on the model buckets wherever they live (validated: with gs:// models
        # the pods have a Google identity, StackConfig._check_kubernetes).
        grants = (
            bucket_readers(
                "kubernetes-read",
                [v.model_uri for v in components.kubernetes.variants],
                pulumi.Output.concat("serviceAccount:", reader),
            )
            if reader is not None
            else []
        )
        deployment = ModelDeployment(
            "kubernetes",
            components.kubernetes,
            service_account_annotations=cluster.service_account_annotations,
            wait_for=[
                *cluster.node_pools_for(gpu=components.kubernetes.gpu is not None),
                *grants,
            ],
            opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
        )
        outputs["kubernetes_deployments"] = pulumi.Output.from_input(deployment.deployment_names)
    return outputs


def run(stack: StackConfig) -> None:
    """Declare ``stack`` and export its outputs."""
    for name, value in declare(stack).items():
        pulumi.export(name, value)


def main() -> None:
    """Entry point of ``pulumi up``/``preview``: read, validate, declare, export."""
    source = str(stack_file(pulumi.get_stack()))
    run(load_stack(read_config(), source))
