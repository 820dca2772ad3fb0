"""Test support: configs, mock-recorded inputs turned into manifests, strict validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pulumi

KUBERNETES_VERSION = "1.33"
CRD_KINDS = frozenset({"HTTPRoute", "ServiceMonitor", "HealthCheckPolicy"})
"""Custom resources: kubernetes-validate has no schema for them (SchemaNotFoundError)."""


_pulumi_test: Callable[[Callable[[], object]], Callable[[], object]] = pulumi.runtime.test


def run_program(program: Callable[[], object]) -> None:
    """Run ``program`` under the mocks until every registration and returned Output settled."""
    _pulumi_test(program)()


Options = list[tuple[str, str, pulumi.ResourceOptions]]


def record_options(into: Options) -> None:
    """Inside a program: append ``(type, name, options)`` of every resource declared from now
    on (parent, ignore_changes... which the mocks do not see)."""

    def capture(args: pulumi.ResourceTransformationArgs) -> None:
        into.append((args.type_, args.name, args.opts))

    pulumi.runtime.register_stack_transformation(capture)


def _ints(value: Any) -> Any:
    """Wire inputs carry every number as a float (8080.0); manifests have integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def manifest(inputs: dict[str, Any]) -> dict[str, Any]:
    """The object a ``kubernetes:*`` resource's wire inputs describe."""
    obj = _ints(inputs)
    assert "apiVersion" in obj, f"not a Kubernetes object: {obj}"
    assert "kind" in obj, f"not a Kubernetes object: {obj}"
    return dict(obj)


def validate_strict(obj: dict[str, Any]) -> None:
    """kubernetes-validate against the pinned version: unknown fields, wrong types and missing
    required fields raise."""
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def base_config(**overrides: Any) -> dict[str, Any]:
    """A valid single-variant config; ``overrides`` replace top-level keys."""
    config: dict[str, Any] = {
        "name": "iris",
        "namespace": "models",
        "image": "ghcr.io/acme/ml-endpoints:1.4.0",
        "variants": [{"name": "champion", "model_uri": "s3://models/iris/model.joblib"}],
    }
    config.update(overrides)
    return config


AB_VARIANTS = [
    {
        "name": "champion",
        "model_uri": "s3://models/iris/v3.joblib",
        "model_version": "3",
        "weight": 90,
    },
    {
        "name": "challenger",
        "model_uri": "s3://models/iris/v4.joblib",
        "model_version": "4",
        "weight": 10,
    },
]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Every manifest of one kind."""
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single manifest of ``kind`` (and ``metadata.name``)."""
    found = [m for m in of_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]
