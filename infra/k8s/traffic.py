"""How requests reach the variants: one Service per variant, and with several variants (or a
Gateway given) a Gateway API ``HTTPRoute`` that splits traffic by weight.

The weights are the variants' percentages (validated to add up to 100); a weight of 0 keeps a
variant deployed and reachable by its own Service but sends it no routed traffic.
"""

from __future__ import annotations

from typing import Any

from infra.k8s.config import ModelDeploymentArgs, Variant
from serving import contract

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


HEALTH_CHECK_POLICY_API_VERSION = "networking.gke.io/v1"
HEALTH_CHECK_POLICY_KIND = "HealthCheckPolicy"
GOOGLE_HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
"""Where Google Cloud's health checks (and the Google Front Ends of global external Application
Load Balancers) connect from ("Firewall rules", Cloud Load Balancing documentation,
https://cloud.google.com/load-balancing/docs/firewall-rules)."""


def gateway_sources(args: ModelDeploymentArgs) -> tuple[str, ...]:
    """CIDRs a GKE Gateway's load balancer reaches the pods from: Google's health-check and
    front-end ranges, and for regional (internal) Gateways, whose Envoy proxies connect from
    the region's proxy-only subnet, that subnet. Empty without a GKE Gateway."""
    gke = args.gateway.gke if args.gateway is not None else None
    if gke is None:
        return ()
    return (*GOOGLE_HEALTH_CHECK_RANGES, *gke.proxy_only_subnets)


def health_check_policy_spec(args: ModelDeploymentArgs, variant: Variant) -> dict[str, Any]:
    """The ``HealthCheckPolicy`` spec (wire form) for a variant's Service.

    A GKE Gateway's load balancer health-checks ``GET /`` on the serving port by default and
    ignores the pods' readiness probes ("Configure Gateway resources using Policies", GKE
    documentation): our server answers ``/`` with 404, so every backend would be unhealthy.
    The policy points the check at the readiness route, at the probe's interval and timeout
    (the CRD refuses a timeout above the interval). Fields from the CRD
    (GoogleCloudPlatform/gke-gateway-api ``config/crd/networking.gke.io_healthcheckpolicies.yaml``):
    ``spec.targetRef`` {group, kind, name}, ``spec.default`` {checkIntervalSec, timeoutSec,
    healthyThreshold, unhealthyThreshold, config {type, httpHealthCheck {port, requestPath}}}.
    """
    probes = args.probes
    interval = min(probes.readiness_period_seconds, 300)
    return {
        "default": {
            "checkIntervalSec": interval,
            "timeoutSec": min(probes.timeout_seconds, interval),
            "healthyThreshold": 1,
            "unhealthyThreshold": 2,
            "config": {
                "type": "HTTP",
                "httpHealthCheck": {
                    "port": contract.PORT,
                    "requestPath": contract.READINESS_PATH,
                },
            },
        },
        "targetRef": {"group": "", "kind": "Service", "name": service_name(args, variant)},
    }
