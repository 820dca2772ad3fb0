"""How requests reach the variants: one Service per variant, and with several variants (or a
Gateway given) a Gateway API ``HTTPRoute`` that splits traffic by weight.

The weights are the variants' percentages (validated to add up to 100); a weight of 0 keeps a
variant deployed and reachable by its own Service but sends it no routed traffic.
"""

from __future__ import annotations

from typing import Any

from infra.k8s.config import ModelDeploymentArgs, Variant

HTTP_ROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
HTTP_ROUTE_KIND = "HTTPRoute"
SERVICE_PORT = 80


def service_name(args: ModelDeploymentArgs, variant: Variant) -> str:
    """``<name>`` for a single variant (a plain Service), ``<name>-<variant>`` otherwise."""
    return args.name if len(args.variants) == 1 else f"{args.name}-{variant.name}"


def http_route_spec(args: ModelDeploymentArgs) -> dict[str, Any]:
    """The ``HTTPRoute`` spec (wire form, camelCase) sending ``path_prefix`` to the variants'
    Services with their weights. Requires ``args.gateway``."""
    gateway = args.gateway
    if gateway is None:
        raise ValueError("http_route_spec needs args.gateway")
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": gateway.name,
    }
    if gateway.namespace is not None:
        parent["namespace"] = gateway.namespace
    if gateway.section_name is not None:
        parent["sectionName"] = gateway.section_name
    spec: dict[str, Any] = {
        "parentRefs": [parent],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": gateway.path_prefix}}],
                "backendRefs": [
                    {
                        "group": "",
                        "kind": "Service",
                        "name": service_name(args, variant),
                        "port": SERVICE_PORT,
                        "weight": variant.weight,
                    }
                    for variant in args.variants
                ],
            }
        ],
    }
    if gateway.hostnames:
        spec["hostnames"] = list(gateway.hostnames)
    return spec
