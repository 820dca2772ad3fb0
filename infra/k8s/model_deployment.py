"""``ModelDeployment``: the serving image on any Kubernetes cluster, one Deployment per variant.

Per variant: Deployment, Service, HorizontalPodAutoscaler (or a fixed replica count) and
PodDisruptionBudget. Shared: the Namespace, ServiceAccount, NetworkPolicy, and optionally a
Gateway API ``HTTPRoute`` splitting traffic by weight, a Prometheus Operator ``ServiceMonitor``
and, with ``monitoring``, a ``PrometheusRule`` and the Grafana dashboard's ConfigMap
(:mod:`infra.k8s.observability`).

Namespace
---------
Kubernetes does not create a namespace for an object put into it: the API answers
``namespaces "X" not found`` (pulumi/pulumi-kubernetes#142), and pulumi-kubernetes' preview
hides that (``provider/pkg/await/await.go``: a missing namespace is a ``namespaceError`` that
preview skips), so only ``pulumi up`` fails. The component therefore declares the Namespace
(``create_namespace``) or reads an existing one (``Namespace.get``: preview fails when it is
missing), and every namespaced child depends on it: created first, deleted last.

HPA and ``spec.replicas``
-------------------------
pulumi-kubernetes v4 applies objects with server-side apply: Pulumi's field manager owns the
fields it sends. Once an HPA scales the Deployment, ``kube-controller-manager`` owns
``spec.replicas`` through the ``scale`` subresource, and any apply that still sends a replica
count either conflicts ("conflict with kube-controller-manager ... .spec.replicas") or, when
forced, resets the scale the HPA chose. So when a variant is autoscaled its Deployment has **no**
``spec.replicas`` at all, on creation and after (the Kubernetes documentation's recommendation):
Kubernetes defaults it to 1 and the HPA raises it to ``min_replicas`` within one sync period
(15 s). ``ignore_changes`` on ``spec.replicas`` is not used: with server-side apply Pulumi would
keep sending the value recorded at creation and keep owning the field. Switching an existing
variant from a fixed count to autoscaling drops the field from Pulumi's apply, which resets it
to 1 for a moment until the HPA acts; do that outside peak traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.config import (
    Autoscaling,
    ModelDeploymentArgs,
    MonitoringConfig,
    ServiceMonitorConfig,
    Variant,
)
from infra.k8s.observability import (
    PROMETHEUS_RULE_KIND,
    SERVICE_MONITOR_API_VERSION,
    SERVICE_MONITOR_KIND,
    dashboard_data,
    prometheus_rule_spec,
    service_monitor_spec,
)
from infra.k8s.pod import PORT_NAME, common_labels, pod_template, secret_env, selector_labels
from infra.k8s.traffic import (
    HEALTH_CHECK_POLICY_API_VERSION,
    HEALTH_CHECK_POLICY_KIND,
    HTTP_ROUTE_API_VERSION,
    HTTP_ROUTE_KIND,
    SERVICE_PORT,
    gateway_sources,
    health_check_policy_spec,
    http_route_spec,
    service_name,
)
from serving import contract

INFLIGHT_METRIC = contract.INFLIGHT_METRIC
IMAGE_PULL_BUDGET_SECONDS = 900
"""Time a new node may take to pull the serving image (GPU images are several GB) and the pod
to download its model, before the startup probe's own window starts."""
ROLLOUT_MARGIN_SECONDS = 120


def rollout_seconds(args: ModelDeploymentArgs) -> int:
    """How long a rollout may take: image pull and model download, then the startup probe's
    whole window, plus a margin. pulumi-kubernetes waits 10 minutes for a Deployment unless
    ``customTimeouts`` say otherwise (``provider/pkg/await/deployment.go``
    ``DefaultDeploymentTimeoutMins``; ``provider/pkg/metadata/overrides.go``
    ``TimeoutDuration``), shorter than the startup probe's default 600 s alone."""
    return IMAGE_PULL_BUDGET_SECONDS + args.probes.startup_timeout_seconds + ROLLOUT_MARGIN_SECONDS


def _quantity(value: float) -> str:
    """``4.0`` -> ``"4"``, ``2.5`` -> ``"2500m"`` (Kubernetes quantities, no floats)."""
    return str(int(value)) if float(value).is_integer() else f"{round(value * 1000)}m"


def hpa_spec(
    autoscaling: Autoscaling, deployment_name: str
) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs:
    """CPU utilisation target, plus in-flight requests per pod when configured."""
    metrics = [
        k8s.autoscaling.v2.MetricSpecArgs(
            type="Resource",
            resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                name="cpu",
                target=k8s.autoscaling.v2.MetricTargetArgs(
                    type="Utilization", average_utilization=autoscaling.cpu_utilization
                ),
            ),
        )
    ]
    if autoscaling.inflight_requests_per_pod is not None:
        metrics.append(
            k8s.autoscaling.v2.MetricSpecArgs(
                type="Pods",
                pods=k8s.autoscaling.v2.PodsMetricSourceArgs(
                    metric=k8s.autoscaling.v2.MetricIdentifierArgs(name=INFLIGHT_METRIC),
                    target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="AverageValue",
                        average_value=_quantity(autoscaling.inflight_requests_per_pod),
                    ),
                ),
            )
        )
    return k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
            api_version="apps/v1", kind="Deployment", name=deployment_name
        ),
        min_replicas=autoscaling.min_replicas,
        max_replicas=autoscaling.max_replicas,
        metrics=metrics,
        behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
            scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                stabilization_window_seconds=autoscaling.scale_down_stabilization_seconds
            )
        ),
    )


class ModelDeployment(pulumi.ComponentResource):
    """The model server on Kubernetes: variants, autoscaling, disruption budget, network policy
    and (optionally) weighted routing and Prometheus scraping.

    ``service_account_annotations`` bind the pods' identity to a cloud role, e.g.
    ``EksCluster.service_account_annotations`` (IRSA) or ``GkeCluster``'s (workload identity).
    Pass the cluster's Kubernetes provider through ``opts`` (``providers=[...]``), and what the
    pods need before they can start as ``wait_for``: the node pools they run on
    (``cluster.node_pools_for(gpu=...)``; on a new cluster pods created before their pool exists
    stay Pending and the rollout's wait runs out) and the grants that let them read their
    model.
    """

    deployment_names: dict[str, pulumi.Output[str]]
    """Deployment name per variant."""
    service_names: dict[str, pulumi.Output[str]]
    """Service name per variant."""
    http_route_name: pulumi.Output[str] | None
    """The HTTPRoute's name, when one splits traffic."""

    def __init__(
        self,
        name: str,
        args: ModelDeploymentArgs,
        *,
        service_account_annotations: Mapping[str, pulumi.Input[str]] | None = None,
        wait_for: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ml-endpoints:k8s:ModelDeployment", name, None, opts)
        namespace = self._namespace(name, args)
        child = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=self._meta(
                args, args.service_account_name, annotations=service_account_annotations
            ),
            automount_service_account_token=False,
            opts=child,
        )
        secret_name = self._secret_env(name, args, child)
        self.deployment_names = {}
        self.service_names = {}
        for variant in args.variants:
            self._variant(name, args, variant, child, secret_name, wait_for)
        self._network_policy(name, args, child)

        self.http_route_name = None
        if args.gateway is not None:
            route = k8s.apiextensions.CustomResource(
                f"{name}-route",
                api_version=HTTP_ROUTE_API_VERSION,
                kind=HTTP_ROUTE_KIND,
                metadata=self._meta(args, args.name),
                spec=http_route_spec(args),
                opts=child,
            )
            self.http_route_name = route.id.apply(lambda _: args.name)
        if args.service_monitor is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-monitor",
                api_version=SERVICE_MONITOR_API_VERSION,
                kind=SERVICE_MONITOR_KIND,
                metadata=self._meta(args, args.name, extra_labels=args.service_monitor.labels),
                spec=service_monitor_spec(args),
                opts=child,
            )
        if args.monitoring is not None and args.service_monitor is not None:
            self._monitoring(name, args, args.monitoring, args.service_monitor, child)

        self.register_outputs(
            {
                "deployment_names": self.deployment_names,
                "service_names": self.service_names,
                "http_route_name": self.http_route_name,
            }
        )

    def _namespace(self, name: str, args: ModelDeploymentArgs) -> k8s.core.v1.Namespace:
        """The namespace the objects go into, created or read (module docstring)."""
        opts = pulumi.ResourceOptions(parent=self)
        if not args.owns_namespace:
            return k8s.core.v1.Namespace.get(f"{name}-namespace", args.namespace, opts=opts)
        labels = common_labels(args)
        return k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={
                    key: labels[key]
                    for key in ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
                },
            ),
            opts=opts,
        )

    def _monitoring(
        self,
        name: str,
        args: ModelDeploymentArgs,
        monitoring: MonitoringConfig,
        service_monitor: ServiceMonitorConfig,
        child: pulumi.ResourceOptions,
    ) -> None:
        """The alert rules next to the ServiceMonitor (selected by the same labels), the
        dashboard where Grafana's sidecar finds it."""
        if monitoring.alerts is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-rules",
                api_version=SERVICE_MONITOR_API_VERSION,
                kind=PROMETHEUS_RULE_KIND,
                metadata=self._meta(args, args.name, extra_labels=service_monitor.labels),
                spec=prometheus_rule_spec(args, monitoring.alerts),
                opts=child,
            )
        if (dashboard := monitoring.dashboard) is not None:
            meta = self._meta(
                args,
                f"{args.name}-dashboard",
                annotations=dashboard.annotations,
                extra_labels=dashboard.labels,
            )
            if dashboard.namespace is not None:
                meta.namespace = dashboard.namespace
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard", metadata=meta, data=dashboard_data(args), opts=child
            )

    @staticmethod
    def _meta(
        args: ModelDeploymentArgs,
        object_name: str,
        *,
        variant: Variant | None = None,
        annotations: Mapping[str, pulumi.Input[str]] | None = None,
        extra_labels: Mapping[str, str] | None = None,
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=object_name,
            namespace=args.namespace,
            labels={**common_labels(args, variant), **(extra_labels or {})},
            annotations=dict(annotations) if annotations else None,
        )

    @staticmethod
    def _secret_env(
        name: str, args: ModelDeploymentArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        """The Secret the pods read their secret environment values from, or None.

        The Deployment then holds only ``secretKeyRef``s: nothing secret in its spec (readable
        by anyone who may read Deployments, and in the provider's checkpoint), while
        pulumi-kubernetes keeps a Secret's ``data``/``stringData`` secret in state
        (provider.go ``annotateSecrets``). The Secret is ``immutable`` and named by Pulumi: a
        new value replaces it under a new name, which changes the pod template, so the pods
        roll onto it; the old Secret is deleted after the rollout (pulumi-kubernetes diff.go
        ``forceNewProperties``, and CHANGELOG 4.18.0, which recommends ``immutable: true`` to
        programs that rely on this)."""
        data = secret_env(args)
        if not data:
            return None
        secret = k8s.core.v1.Secret(
            f"{name}-env",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace, labels=common_labels(args)
            ),
            type="Opaque",
            immutable=True,
            string_data=data,
            opts=child,
        )
        return secret.metadata.apply(lambda meta: str(meta.name))

    def _variant(
        self,
        name: str,
        args: ModelDeploymentArgs,
        variant: Variant,
        child: pulumi.ResourceOptions,
        secret_name: pulumi.Output[str] | None,
        wait_for: Sequence[pulumi.Resource],
    ) -> None:
        object_name = f"{args.name}-{variant.name}"
        autoscaling = args.autoscaling_for(variant)
        selector = k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(args, variant))
        deployment = k8s.apps.v1.Deployment(
            f"{name}-{variant.name}",
            metadata=self._meta(args, object_name, variant=variant),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # Autoscaled: no replica count at all (module docstring).
                replicas=None if autoscaling is not None else args.replicas,
                selector=selector,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_surge="25%", max_unavailable=0
                    ),
                ),
                revision_history_limit=5,
                # The controller marks the rollout failed after this without progress; the
                # awaiter then fails too (ProgressDeadlineExceeded): same budget as the wait.
                progress_deadline_seconds=rollout_seconds(args),
                template=pod_template(args, variant, secret_name),
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=list(wait_for),
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=f"{rollout_seconds(args)}s", update=f"{rollout_seconds(args)}s"
                    ),
                ),
            ),
        )
        self.deployment_names[variant.name] = deployment.metadata.apply(lambda m: str(m.name))
        service = k8s.core.v1.Service(
            f"{name}-{variant.name}",
            metadata=self._meta(args, service_name(args, variant), variant=variant),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector_labels(args, variant),
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name=PORT_NAME,
                        port=SERVICE_PORT,
                        target_port=PORT_NAME,
                        protocol="TCP",
                        app_protocol="http",
                    )
                ],
            ),
            opts=child,
        )
        self.service_names[variant.name] = service.metadata.apply(lambda m: str(m.name))
        if args.gateway is not None and args.gateway.gke is not None:
            # GKE's load balancer checks GET / otherwise, and ignores readiness probes.
            k8s.apiextensions.CustomResource(
                f"{name}-{variant.name}-health-check",
                api_version=HEALTH_CHECK_POLICY_API_VERSION,
                kind=HEALTH_CHECK_POLICY_KIND,
                metadata=self._meta(args, service_name(args, variant), variant=variant),
                spec=health_check_policy_spec(args, variant),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[service])
                ),
            )
        if autoscaling is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-{variant.name}",
                metadata=self._meta(args, object_name, variant=variant),
                spec=hpa_spec(autoscaling, object_name),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[deployment])
                ),
            )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-{variant.name}",
            metadata=self._meta(args, object_name, variant=variant),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=args.pdb_max_unavailable,
                selector=selector,
                # A pod that never got ready must not block node drains.
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=child,
        )

    @staticmethod
    def _network_policy(
        name: str, args: ModelDeploymentArgs, child: pulumi.ResourceOptions
    ) -> None:
        peers = [
            k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())
        ]
        for peer in args.ingress_from:
            peers.append(
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=(
                        k8s.meta.v1.LabelSelectorArgs(match_labels=peer.namespace_labels)
                        if peer.namespace_labels is not None
                        else None
                    ),
                    pod_selector=(
                        k8s.meta.v1.LabelSelectorArgs(match_labels=peer.pod_labels)
                        if peer.pod_labels is not None
                        else None
                    ),
                    ip_block=(
                        k8s.networking.v1.IPBlockArgs(cidr=peer.cidr)
                        if peer.cidr is not None
                        else None
                    ),
                )
            )
        # A GKE Gateway's load balancer connects from Google's ranges (and the proxy-only
        # subnet): outside the cluster, so only an ipBlock admits it (Dataplane V2 enforces it).
        for cidr in gateway_sources(args):
            if all(peer.cidr != cidr for peer in args.ingress_from):
                peers.append(
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr)
                    )
                )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata=ModelDeployment._meta(args, args.name),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"app.kubernetes.io/name": args.name}
                ),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=peers,
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(port=PORT_NAME, protocol="TCP")
                        ],
                    )
                ],
            ),
            opts=child,
        )
