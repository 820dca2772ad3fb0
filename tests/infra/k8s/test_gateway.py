"""The GKE Gateway path serves traffic (issue 14 item 4): a HealthCheckPolicy on the readiness
route per variant Service, and a NetworkPolicy that admits the load balancer's ranges."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from infra.k8s.config import load
from infra.validation import ConfigError
from serving import contract
from tests.infra.k8s.conftest import Render
from tests.infra.k8s.support import AB_VARIANTS, base_config, of_kind, one, validate_strict
from tests.infra.offline_plans import stack_plans

PROXY_ONLY = "10.129.0.0/23"
GKE = base_config(
    variants=AB_VARIANTS,
    gateway={
        "name": "internal",
        "namespace": "gateways",
        "gke": {"proxy_only_subnets": [PROXY_ONLY]},
    },
    ingress_from=[{"namespace_labels": {"kubernetes.io/metadata.name": "monitoring"}}],
)

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_SECONDS = {"type": "integer", "minimum": 1, "maximum": 300}
_THRESHOLD = {"type": "integer", "minimum": 1, "maximum": 10}
HEALTH_CHECK_POLICY_SPEC: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["targetRef"],
    "properties": {
        "default": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "checkIntervalSec": _SECONDS,
                "timeoutSec": _SECONDS,
                "healthyThreshold": _THRESHOLD,
                "unhealthyThreshold": _THRESHOLD,
                "logConfig": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"enabled": {"type": "boolean"}},
                },
                "config": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 2,
                    "maxProperties": 2,
                    "properties": {
                        "type": {"enum": ["TCP", "HTTP", "HTTPS", "HTTP2", "GRPC"]},
                        "httpHealthCheck": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "host": {"type": "string", "maxLength": 2048},
                                "port": _PORT,
                                "portName": {"type": "string", "maxLength": 63},
                                "portSpecification": {
                                    "enum": ["USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"]
                                },
                                "proxyHeader": {"enum": ["NONE", "PROXY_V1"]},
                                "requestPath": {
                                    "type": "string",
                                    "maxLength": 2048,
                                    "pattern": r"\/[A-Za-z0-9\/\-._~%!?$&'()*+,;=:]*$",
                                },
                                "response": {"type": "string", "maxLength": 1024},
                            },
                        },
                    },
                },
            },
        },
        "targetRef": {
            "type": "object",
            "additionalProperties": False,
            "required": ["group", "kind", "name"],
            "properties": {
                "group": {"type": "string", "maxLength": 253},
                "kind": {"type": "string", "minLength": 1, "maxLength": 63},
                "name": {"type": "string", "minLength": 1, "maxLength": 253},
                "namespace": {"type": "string", "minLength": 1, "maxLength": 63},
            },
        },
    },
}
"""``spec`` of ``networking.gke.io/v1`` ``HealthCheckPolicy``, field by field as its CRD declares
it (GoogleCloudPlatform/gke-gateway-api ``config/crd/networking.gke.io_healthcheckpolicies.yaml``,
types in ``apis/networking/v1/healthcheck_types.go``): ``targetRef`` {group, kind, name}
required; ``default`` with ``checkIntervalSec``/``timeoutSec`` 1-300, thresholds 1-10, and
``config`` holding exactly ``type`` and the matching protocol block (min/maxProperties 2).
Unknown fields refused as ``kubectl apply --validate=strict`` refuses them. No package ships
this CRD's schema for Python; the HTTP2/HTTPS/TCP/GRPC blocks we never send are left out."""


def _spec_ok(spec: dict[str, Any]) -> None:
    jsonschema.validate(spec, HEALTH_CHECK_POLICY_SPEC)
    default = spec["default"]
    # The CRD's description: "It is invalid for timeoutSec to have greater value than
    # checkIntervalSec" (enforced by GKE's controller, not the schema).
    assert default["timeoutSec"] <= default["checkIntervalSec"]
    config = default["config"]
    assert config["type"] == "HTTP"
    assert "httpHealthCheck" in config


def test_each_variant_service_gets_a_health_check_on_the_readiness_route(render: Render) -> None:
    """A GKE Gateway's load balancer health-checks ``GET /`` on the serving port unless a
    HealthCheckPolicy says otherwise, and does not read readiness probes ("Configure Gateway
    resources using Policies", GKE documentation). Our server answers ``/`` with 404."""
    manifests = render(GKE)
    policies = of_kind(manifests, "HealthCheckPolicy")
    services = {s["metadata"]["name"] for s in of_kind(manifests, "Service")}
    assert {p["spec"]["targetRef"]["name"] for p in policies} == services
    assert len(policies) == 2
    for policy in policies:
        assert policy["apiVersion"] == "networking.gke.io/v1"
        assert policy["metadata"]["namespace"] == "models"  # the Service's namespace (CRD rule)
        spec = policy["spec"]
        _spec_ok(spec)
        assert spec["targetRef"]["group"] == ""
        assert spec["targetRef"]["kind"] == "Service"
        check = spec["default"]["config"]["httpHealthCheck"]
        assert check["requestPath"] == contract.READINESS_PATH == "/health/ready"
        assert check["port"] == contract.PORT


def test_the_health_check_follows_the_probe_timings(render: Render) -> None:
    config = {**GKE, "probes": {"readiness_period_seconds": 3, "timeout_seconds": 10}}
    policy = of_kind(render(config), "HealthCheckPolicy")[0]
    _spec_ok(policy["spec"])
    assert policy["spec"]["default"]["checkIntervalSec"] == 3
    assert policy["spec"]["default"]["timeoutSec"] == 3  # never above the interval


def test_the_field_by_field_schema_rejects_what_the_crd_rejects() -> None:
    good = {
        "default": {"config": {"type": "HTTP", "httpHealthCheck": {"requestPath": "/x"}}},
        "targetRef": {"group": "", "kind": "Service", "name": "iris"},
    }
    jsonschema.validate(good, HEALTH_CHECK_POLICY_SPEC)
    bad = [
        {"default": good["default"], "targetRef": {"kind": "Service", "name": "iris"}},
        {**good, "default": {"config": {"type": "HTTP"}}},
        {**good, "default": {"checkIntervalSec": 0, **good["default"]}},
        {**good, "default": {"config": {"type": "HTTP", "httpHealthCheck": {"path": "/x"}}}},
        {**good, "targetref": good["targetRef"]},
    ]
    for spec in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(spec, HEALTH_CHECK_POLICY_SPEC)


def test_the_network_policy_admits_google_ranges_and_the_proxy_only_subnet(
    render: Render,
) -> None:
    """Google's health checks (and a global external Gateway's front ends) connect from
    35.191.0.0/16 and 130.211.0.0/22; a regional (internal) Gateway's Envoy proxies from the
    region's proxy-only subnet ("Firewall rules", Cloud Load Balancing documentation). They are
    outside the cluster, so only ipBlocks admit them; GKE Dataplane V2 enforces the policy and
    drops the rest."""
    manifests = render(GKE)
    policy = one(manifests, "NetworkPolicy")
    validate_strict(policy)
    (rule,) = policy["spec"]["ingress"]
    blocks = [peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer]
    assert blocks == ["35.191.0.0/16", "130.211.0.0/22", PROXY_ONLY]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    } in (rule["from"])
    for obj in manifests:
        if obj["kind"] not in {"HTTPRoute", "HealthCheckPolicy"}:
            validate_strict(obj)


def test_without_a_gke_gateway_nothing_gke_specific_is_declared(render: Render) -> None:
    config = {**GKE, "gateway": {"name": "internal", "namespace": "gateways"}}
    manifests = render(config)
    assert of_kind(manifests, "HealthCheckPolicy") == []
    (rule,) = one(manifests, "NetworkPolicy")["spec"]["ingress"]
    assert not [peer for peer in rule["from"] if "ipBlock" in peer]


def test_a_cidr_peer_admits_a_load_balancer_outside_the_cluster(render: Render) -> None:
    """EKS with the AWS Gateway API Controller: VPC Lattice connects from 169.254.171.0/24
    (aws/aws-application-networking-k8s ``docs/deploy.md``)."""
    config = base_config(ingress_from=[{"cidr": "169.254.171.0/24"}])
    policy = one(render(config), "NetworkPolicy")
    validate_strict(policy)
    (rule,) = policy["spec"]["ingress"]
    assert {"ipBlock": {"cidr": "169.254.171.0/24"}} in rule["from"]


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        ({"cidr": "169.254.171.0/24", "namespace_labels": {"a": "b"}}, "takes no labels"),
        ({"cidr": "10.0.0.1/16"}, "not a CIDR block"),
        ({}, "give namespace_labels"),
    ],
)
def test_invalid_peers_name_the_key(peer: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(base_config(ingress_from=[peer]))
    assert caught.value.key.startswith("kubernetes.ingress_from[0]")
    assert message in str(caught.value)


def test_an_invalid_proxy_only_subnet_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load({**GKE, "gateway": {"name": "g", "gke": {"proxy_only_subnets": ["10.129.0/23"]}}})
    assert caught.value.key == "kubernetes.gateway.gke.proxy_only_subnets[0]"


def test_staging_on_gke_health_checks_readiness_and_admits_the_load_balancer() -> None:
    """Staging's cluster is GKE (its Gateway controller is GKE's): the program sets
    ``gateway.gke`` there, with the proxy-only subnet the stack file gives."""
    plan = stack_plans()["staging"]
    policies = [r for r in plan.resources if r.type.endswith(":HealthCheckPolicy")]
    assert sorted(p.inputs["spec"]["targetRef"]["name"] for p in policies) == [
        "reranker-challenger",
        "reranker-champion",
    ]
    for policy in policies:
        _spec_ok(policy.inputs["spec"])
    (network_policy,) = [r for r in plan.resources if r.type.endswith(":NetworkPolicy")]
    peers = network_policy.inputs["spec"]["ingress"][0]["from"]
    cidrs = [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p]
    assert cidrs[:2] == ["35.191.0.0/16", "130.211.0.0/22"]
    assert cidrs[2:] == ["10.129.0.0/23"]  # the proxy-only subnet of stacks/Pulumi.staging.yaml
    # prod is EKS: no GKE policy there.
    assert not [r for r in stack_plans()["prod"].resources if r.type.endswith(":HealthCheckPolicy")]
