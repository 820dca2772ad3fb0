"""ModelDeployment wiring under Pulumi mocks, and every rendered object against the Kubernetes
1.33 OpenAPI schema in strict mode."""

from __future__ import annotations

import os
from typing import Any

import kubernetes_validate
import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.k8s.config import load
from infra.k8s.model_deployment import ModelDeployment
from infra.stack.mocks import RecordingMocks
from serving.settings import Settings
from tests.infra.k8s.conftest import Render
from tests.infra.k8s.support import (
    AB_VARIANTS,
    CRD_KINDS,
    Options,
    base_config,
    of_kind,
    one,
    record_options,
    run_program,
    validate_strict,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4

FULL = base_config(
    image_digest=DIGEST,
    variants=AB_VARIANTS,
    gateway={
        "name": "public",
        "namespace": "gateways",
        "section_name": "https",
        "hostnames": ["iris.example.com"],
        "path_prefix": "/",
        "gke": {},
    },
    gpu={"count": 1},
    autoscaling={"min_replicas": 2, "max_replicas": 8, "inflight_requests_per_pod": 2.5},
    ingress_from=[{"namespace_labels": {"kubernetes.io/metadata.name": "gateways"}}],
    service_monitor={"interval": "15s", "labels": {"release": "prometheus"}},
    env={"ML_ENDPOINTS_LOG_LEVEL": "warning"},
)
SINGLE_FIXED = base_config(autoscaling=None, replicas=3, shutdown={"prestop_sleep_seconds": 0})


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(deployment)["env"]}


@pytest.mark.parametrize("config", [FULL, SINGLE_FIXED], ids=["ab-gpu-hpa", "single-fixed"])
def test_every_builtin_object_passes_strict_schema_validation(
    render: Render, config: dict[str, Any]
) -> None:
    manifests = render(config)
    builtin = [m for m in manifests if m["kind"] not in CRD_KINDS]
    assert {m["kind"] for m in builtin} >= {
        "Namespace",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceAccount",
        "NetworkPolicy",
    }
    for obj in builtin:
        validate_strict(obj)


@pytest.mark.parametrize("kind", sorted(CRD_KINDS))
def test_crds_have_no_schema_in_kubernetes_validate(render: Render, kind: str) -> None:
    """HTTPRoute, ServiceMonitor and HealthCheckPolicy are asserted field by field (here and in
    test_gateway.py) because no schema for them ships with kubernetes-validate (nor on PyPI);
    this fails once one does."""
    objects = of_kind(render(FULL), kind)
    assert objects
    for obj in objects:
        with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
            validate_strict(obj)


def test_strict_validation_really_rejects_unknown_fields(render: Render) -> None:
    deployment = one(render(SINGLE_FIXED), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(Exception, match="livenesProbe"):
        validate_strict(deployment)


def test_autoscaled_deployments_have_no_replica_count(render: Render) -> None:
    manifests = render(FULL)
    for variant in ("champion", "challenger"):
        deployment = one(manifests, "Deployment", f"iris-{variant}")
        assert "replicas" not in deployment["spec"]
        hpa = one(manifests, "HorizontalPodAutoscaler", f"iris-{variant}")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
        validate_strict(hpa)


def test_hpa_metrics_cpu_and_inflight_requests(render: Render) -> None:
    hpa = one(render(FULL), "HorizontalPodAutoscaler", "iris-champion")
    cpu, inflight = hpa["spec"]["metrics"]
    assert cpu == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
    }
    assert inflight == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "model_inflight_requests"},
            "target": {"type": "AverageValue", "averageValue": "2500m"},
        },
    }
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_default_hpa_is_cpu_only_at_70_percent(render: Render) -> None:
    hpa = one(render(base_config()), "HorizontalPodAutoscaler")
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


def test_fixed_replicas_without_hpa(render: Render) -> None:
    manifests = render(SINGLE_FIXED)
    assert one(manifests, "Deployment")["spec"]["replicas"] == 3
    assert of_kind(manifests, "HorizontalPodAutoscaler") == []


def test_variant_overrides_autoscaling(render: Render) -> None:
    variants = [
        AB_VARIANTS[0],
        dict(AB_VARIANTS[1], autoscaling={"min_replicas": 1, "max_replicas": 2}),
    ]
    manifests = render(base_config(variants=variants, gateway={"name": "public"}))
    champion = one(manifests, "HorizontalPodAutoscaler", "iris-champion")["spec"]
    challenger = one(manifests, "HorizontalPodAutoscaler", "iris-challenger")["spec"]
    assert (champion["minReplicas"], champion["maxReplicas"]) == (2, 10)
    assert (challenger["minReplicas"], challenger["maxReplicas"]) == (1, 2)


def test_http_route_splits_traffic_by_weight_to_the_variant_services(render: Render) -> None:
    manifests = render(FULL)
    route = one(manifests, "HTTPRoute")
    # No schema on PyPI for Gateway API CRDs: assert the v1 structure explicitly.
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"] == {
        "name": "iris",
        "namespace": "models",
        "labels": route["metadata"]["labels"],
    }
    assert set(route["spec"]) == {"parentRefs", "hostnames", "rules"}
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    assert route["spec"]["hostnames"] == ["iris.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    services = {s["metadata"]["name"]: s for s in of_kind(manifests, "Service")}
    weights = {b["name"]: b["weight"] for b in rule["backendRefs"]}
    assert weights == {"iris-champion": 90, "iris-challenger": 10}
    for backend in rule["backendRefs"]:
        assert set(backend) == {"group", "kind", "name", "port", "weight"}
        assert (backend["group"], backend["kind"]) == ("", "Service")
        service = services[backend["name"]]
        assert backend["port"] in [p["port"] for p in service["spec"]["ports"]]
        variant = service["spec"]["selector"]["ml-endpoints.io/variant"]
        assert backend["name"] == f"iris-{variant}"


def test_single_variant_gets_a_plain_service_and_no_route(render: Render) -> None:
    manifests = render(base_config())
    service = one(manifests, "Service")
    assert service["metadata"]["name"] == "iris"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
    ]
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "iris",
        "ml-endpoints.io/variant": "champion",
    }
    assert of_kind(manifests, "HTTPRoute") == []


def test_probes_target_the_servers_routes_with_slow_start_timings(render: Render) -> None:
    config = base_config(probes={"startup_timeout_seconds": 900, "startup_period_seconds": 10})
    container = _container(one(render(config), "Deployment"))
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    startup, ready, live = (
        container["startupProbe"],
        container["readinessProbe"],
        container["livenessProbe"],
    )
    assert startup["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert ready["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert live["httpGet"] == {"path": "/health/live", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 900
    assert ready["periodSeconds"] * ready["failureThreshold"] <= 10
    assert live["failureThreshold"] >= 3


def test_shutdown_sequence_fits_the_grace_period(render: Render) -> None:
    config = base_config(
        shutdown={"prestop_sleep_seconds": 7, "drain_seconds": 4, "graceful_timeout_seconds": 25}
    )
    deployment = one(render(config), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 7}}}
    env = _env(deployment)
    assert env["ML_ENDPOINTS_DRAIN_SECONDS"] == "4"
    assert env["ML_ENDPOINTS_GRACEFUL_TIMEOUT"] == "25"
    assert pod["terminationGracePeriodSeconds"] > 7 + 4 + 25


def test_prestop_sleep_can_be_left_out(render: Render) -> None:
    deployment = one(render(SINGLE_FIXED), "Deployment")
    assert "lifecycle" not in _container(deployment)
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 3 + 20


def test_server_environment(render: Render) -> None:
    manifests = render(FULL)
    env = _env(one(manifests, "Deployment", "iris-challenger"))
    assert env == {
        "MODEL_URI": "s3://models/iris/v4.joblib",
        "MODEL_NAME": "model",
        "MODEL_VERSION": "4",
        "ML_ENDPOINTS_VARIANT": "challenger",
        "ML_ENDPOINTS_WORKERS": "1",
        "ML_ENDPOINTS_DRAIN_SECONDS": "3",
        "ML_ENDPOINTS_GRACEFUL_TIMEOUT": "20",
        "ML_ENDPOINTS_LOG_LEVEL": "warning",
    }


def test_rendered_environment_is_what_the_server_reads(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = one(render(FULL), "Deployment", "iris-challenger")
    env = _env(deployment)
    for key in list(os.environ):
        if key.startswith(("ML_ENDPOINTS_", "MODEL_", "AIP_", "SAGEMAKER_", "VARIANT_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.model_uri == "s3://models/iris/v4.joblib"
    assert (settings.model_name, settings.model_version) == ("model", "4")
    assert settings.variant == "challenger"
    assert settings.workers == 1
    assert (settings.drain_seconds, settings.graceful_timeout) == (3, 20)
    assert settings.log_level == "warning"
    assert settings.resolved_port == 8080
    # The only place it writes is the writable emptyDir under the read-only root filesystem.
    (mount,) = _container(deployment)["volumeMounts"]
    assert settings.cache_dir.startswith(mount["mountPath"] + "/")


def test_pods_are_locked_down(render: Render) -> None:
    deployment = one(render(base_config()), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsUser"] == 10001
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]


def test_requests_and_limits_always_set(render: Render) -> None:
    resources = _container(one(render(base_config()), "Deployment"))["resources"]
    assert resources == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


def test_gpu_pods_ask_for_gpus_tolerate_the_taint_and_select_gpu_nodes(render: Render) -> None:
    config = base_config(
        gpu={"count": 2, "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"}}
    )
    deployment = one(render(config), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    resources = _container(deployment)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2"
    assert resources["requests"]["nvidia.com/gpu"] == "2"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}


def test_default_gpu_selector_matches_the_cluster_components_label(render: Render) -> None:
    pod = one(render(base_config(gpu={})), "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"ml-endpoints.io/accelerator": "nvidia"}


def test_cpu_pods_have_no_gpu_scheduling(render: Render) -> None:
    deployment = one(render(base_config()), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert "tolerations" not in pod
    assert "nodeSelector" not in pod
    assert "nvidia.com/gpu" not in _container(deployment)["resources"]["limits"]


def test_image_is_pinned_by_digest(render: Render) -> None:
    pinned = "sha256:" + "f" * 64
    variants = [
        AB_VARIANTS[0],
        dict(AB_VARIANTS[1], image="ghcr.io/acme/ml-endpoints:1.5.0-rc1", image_digest=pinned),
    ]
    manifests = render(
        base_config(image_digest=DIGEST, variants=variants, gateway={"name": "public"})
    )
    images = {
        d["metadata"]["name"]: _container(d)["image"] for d in of_kind(manifests, "Deployment")
    }
    assert images == {
        "iris-champion": f"ghcr.io/acme/ml-endpoints:1.4.0@{DIGEST}",
        "iris-challenger": f"ghcr.io/acme/ml-endpoints:1.5.0-rc1@{pinned}",
    }


def test_unpinned_image_is_used_as_given(render: Render) -> None:
    container = _container(one(render(base_config()), "Deployment"))
    assert container["image"] == "ghcr.io/acme/ml-endpoints:1.4.0"


def test_pods_spread_across_zones_and_nodes(render: Render) -> None:
    pod = one(render(base_config(zone_spread="DoNotSchedule")), "Deployment")["spec"]["template"]
    constraints = {c["topologyKey"]: c for c in pod["spec"]["topologySpreadConstraints"]}
    zone = constraints["topology.kubernetes.io/zone"]
    assert zone["maxSkew"] == 1
    assert zone["whenUnsatisfiable"] == "DoNotSchedule"
    assert zone["matchLabelKeys"] == ["pod-template-hash"]
    selected = zone["labelSelector"]["matchLabels"]
    assert selected.items() <= pod["metadata"]["labels"].items()
    assert constraints["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_disruption_budget_per_variant(render: Render) -> None:
    manifests = render(FULL)
    for deployment in of_kind(manifests, "Deployment"):
        pdb = one(manifests, "PodDisruptionBudget", deployment["metadata"]["name"])
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_network_policy_admits_only_the_given_peers_on_the_http_port(render: Render) -> None:
    config = base_config(
        ingress_from=[
            {"namespace_labels": {"kubernetes.io/metadata.name": "gateways"}},
            {"namespace_labels": {"team": "ml"}, "pod_labels": {"role": "batch"}},
        ]
    )
    manifests = render(config)
    policy = one(manifests, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "iris"}}
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}}},
        {
            "namespaceSelector": {"matchLabels": {"team": "ml"}},
            "podSelector": {"matchLabels": {"role": "batch"}},
        },
    ]
    labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()


def test_service_monitor_scrapes_metrics_of_every_variant(render: Render) -> None:
    manifests = render(FULL)
    monitor = one(manifests, "ServiceMonitor")
    # No schema on PyPI for the Prometheus Operator CRDs: assert the structure explicitly.
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["models"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s", "scheme": "http"}
    ]
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    services = of_kind(manifests, "Service")
    assert len(services) == 2
    for service in services:
        assert wanted <= service["metadata"]["labels"].items()
        assert "http" in [p["name"] for p in service["spec"]["ports"]]


def test_no_service_monitor_unless_asked(render: Render) -> None:
    assert of_kind(render(base_config()), "ServiceMonitor") == []


def test_service_account_carries_the_cloud_identity(render: Render) -> None:
    role = "arn:aws:iam::123456789012:role/iris-serving"
    manifests = render(
        base_config(), service_account_annotations={"eks.amazonaws.com/role-arn": role}
    )
    account = one(manifests, "ServiceAccount")
    assert account["metadata"]["name"] == "model-server"
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "model-server"


def test_children_use_the_components_provider(pulumi_mocks: RecordingMocks) -> None:
    args = load(FULL)

    def declare() -> None:
        provider = k8s.Provider("target", kubeconfig="{}")
        ModelDeployment("md", args, opts=pulumi.ResourceOptions(providers=[provider]))

    run_program(declare)
    children = [r for r in pulumi_mocks.resources if r.type.startswith("kubernetes:")]
    assert len(children) == 15  # with a HealthCheckPolicy per variant (gateway.gke)
    assert all(r.provider and "::target::" in r.provider for r in children), [
        r.provider for r in children
    ]
    component = pulumi_mocks.one("ml-endpoints:k8s:ModelDeployment")
    assert component.name == "md"


def test_every_child_is_parented_to_the_component(pulumi_mocks: RecordingMocks) -> None:
    args = load(FULL)
    declared: Options = []
    component: list[ModelDeployment] = []

    def declare() -> None:
        record_options(declared)
        component.append(ModelDeployment("md", args))

    run_program(declare)
    children = [(t, n, o) for t, n, o in declared if t != "ml-endpoints:k8s:ModelDeployment"]
    assert len(children) == 15  # with a HealthCheckPolicy per variant (gateway.gke)
    assert all(o.parent is component[0] for _, _, o in children)
    deployments = [o for t, _, o in children if t == "kubernetes:apps/v1:Deployment"]
    # Replicas are left out, not ignored: ignore_changes would keep Pulumi owning the field.
    assert all(not o.ignore_changes for o in deployments)


def test_outputs_name_the_objects(pulumi_mocks: RecordingMocks) -> None:
    args = load(FULL)
    seen: dict[str, Any] = {}

    def declare() -> pulumi.Output[None]:
        md = ModelDeployment("md", args)
        assert md.http_route_name is not None
        return pulumi.Output.all(
            pulumi.Output.all(**md.deployment_names),
            pulumi.Output.all(**md.service_names),
            md.http_route_name,
        ).apply(
            lambda values: seen.update(
                zip(("deployments", "services", "route"), values, strict=True)
            )
        )

    run_program(declare)
    assert seen["deployments"] == {"champion": "iris-champion", "challenger": "iris-challenger"}
    assert seen["services"] == {"champion": "iris-champion", "challenger": "iris-challenger"}
    assert seen["route"] == "iris"
