"""The Pulumi program: every resource of a stack, declared from its typed configuration.

``pulumi up`` runs :func:`main` (through ``infra/program/__main__.py``): it reads the stack's
configuration as Pulumi hands it over, validates it once and :func:`run` declares it.
``ml-endpoints plan`` validates the stack file once and runs the same :func:`run` offline under
Pulumi's mocks (:mod:`infra.stack.plan`).
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.secret_scan import find_plaintext_secrets, secret_advice
from infra.stack.components import compose
from infra.stack.config import NAMESPACE, StackConfig, load_stack
from infra.stack.files import StackError, stack_file


def read_config() -> dict[str, Any]:
    """The stack's ``ml-endpoints:*`` configuration as Pulumi hands it to the program.

    Keys the stack file holds encrypted reach the program decrypted, in plain text
    (``Config.get_object``; Pulumi marks secretness per top-level key only): they are not yet
    turned back into secret Outputs, so keep secret values out of resource inputs until
    :mod:`infra.secret_values` is wired into the components (issue 15, item 4). Keys Pulumi
    does not hold as secrets are checked for plain-text secrets like the stack file is.
    """
    config = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    for key in _project_keys():
        value = config.get_object(key)
        if value is None:
            continue
        full_key = f"{NAMESPACE}:{key}"
        if not pulumi.runtime.is_config_secret(full_key):
            for found in find_plaintext_secrets({full_key: value}):
                raise StackError(
                    f"{stack_file(pulumi.get_stack())}: {found.key}",
                    f"{found.reason}; {secret_advice(found.key)}",
                )
        values[full_key] = value
    return values


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
    if components.vertex is not None:
        from infra.gcp.artifact_registry import ArtifactRegistry
        from infra.gcp.vertex import VertexEndpoint

        registry = (
            ArtifactRegistry("serving", components.artifact_registry)
            if components.artifact_registry is not None
            else None
        )
        vertex = VertexEndpoint(
            "vertex",
            components.vertex,
            pulumi.ResourceOptions(depends_on=[registry] if registry else None),
        )
        outputs["vertex_endpoint"] = vertex.endpoint_name
        outputs["vertex_traffic"] = pulumi.Output.from_input(components.vertex.split)
        if registry is not None:
            outputs["artifact_registry"] = registry.image_prefix
    if components.kubernetes is not None and components.cluster is not None:
        from infra.clusters.config import declare_cluster
        from infra.k8s.model_deployment import ModelDeployment

        cluster = declare_cluster("cluster", components.cluster)
        deployment = ModelDeployment(
            "kubernetes",
            components.kubernetes,
            service_account_annotations=cluster.service_account_annotations,
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
    run(load_stack(read_config(), source, scan_secrets=False))
