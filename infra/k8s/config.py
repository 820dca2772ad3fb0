"""Typed arguments of :class:`~infra.k8s.model_deployment.ModelDeployment`.

Every rule is checked here, before any resource is declared, and every error names its full key
path (``kubernetes.variants[1].weight``). Cross-field rules point at the field they are about
rather than at the whole ``kubernetes`` object. A stack's ``ml-endpoints:kubernetes`` is a
:class:`ServingSettings` too (:mod:`infra.stack.config`), so its errors name the stack key.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from infra.k8s.gpu import GPU_NODE_LABELS
from infra.monitoring.config import AlertsConfig, CanaryConfig
from infra.secret_values import Secret, revealed
from infra.validation import Frozen, Problem, Weight, rule_error, validate, weighted_split
from serving import contract

CONFIG_KEY = "kubernetes"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: what Kubernetes allows in object names, namespaces and port names."""

_QUANTITY = re.compile(
    r"^(?P<number>\d+(\.\d+)?|\.\d+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
)
_SUFFIX: dict[str | None, Decimal] = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{f"{s}i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}

RESERVED_ENV = contract.MODEL_IDENTITY_ENV | {
    contract.MODEL_URI_ENV,
    contract.WORKERS_ENV,
    contract.DRAIN_SECONDS_ENV,
    contract.GRACEFUL_TIMEOUT_ENV,
}
"""Variables the component sets from typed args; ``env`` may not override them."""
MAX_INFLIGHT_ENV = "ML_ENDPOINTS_MAX_INFLIGHT"
"""The server's in-flight limit per worker (``serving.settings.Settings.max_inflight``)."""


def parse_quantity(value: str) -> Decimal:
    """``"500m"`` -> 0.5, ``"2Gi"`` -> 2147483648; :class:`ValueError` if not a quantity."""
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 1.5, 512Mi, 4Gi)"
        )
    number: Decimal = Decimal(match["number"]) * _SUFFIX[match["suffix"]]
    return number


def _env_not_reserved(env: dict[str, str | Secret]) -> dict[str, str | Secret]:
    for key in env:
        if key in RESERVED_ENV:
            raise ValueError(f"{key} is set from the typed args; set it there instead")
        if key.startswith(("AIP_", "SAGEMAKER_")):
            raise ValueError(f"{key}: AIP_* and SAGEMAKER_* are set by those platforms only")
        if not re.fullmatch(contract.ENV_NAME_PATTERN, key):
            raise ValueError(f"{key!r} is not a valid environment variable name")
    return env


CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
"""Namespaces every cluster has: adopted, never created (creating one that exists fails with
AlreadyExists since pulumi-kubernetes 4.29, ``provider/pkg/await/await.go``)."""

Quantity = Annotated[str, Field(min_length=1)]
DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
Environment = Annotated[dict[str, str | Secret], AfterValidator(_env_not_reserved)]
"""Environment of the serving container; what the typed args set is refused. Values set with
``--secret`` stay :class:`~infra.secret_values.Secret`: the pods read them from a Kubernetes
Secret."""


class Resources(Frozen):
    """Requests and limits of the serving container (always both: the HPA's CPU utilisation is
    measured against the request, and limits keep one pod from starving its node)."""

    cpu_request: Quantity = "500m"
    memory_request: Quantity = "1Gi"
    cpu_limit: Quantity = "2"
    memory_limit: Quantity = "1Gi"
    temp_size_limit: Quantity = "1Gi"
    """Size limit of the writable ``emptyDir`` mounted at ``/tmp`` (cache, capture files)."""

    @field_validator("cpu_request", "memory_request", "temp_size_limit")
    @classmethod
    def _is_quantity(cls, value: str) -> str:
        parse_quantity(value)
        return value

    @field_validator("cpu_limit", "memory_limit")
    @classmethod
    def _limit_not_below_request(cls, value: str, info: ValidationInfo) -> str:
        request_key = info.field_name.replace("limit", "request") if info.field_name else ""
        request = info.data.get(request_key)
        if request is not None and parse_quantity(value) < parse_quantity(request):
            raise ValueError(f"must be at least {request_key} ({request}), got {value!r}")
        return value


class Gpu(Frozen):
    """NVIDIA GPUs per pod, and where such pods may run.

    ``node_selector`` defaults to the label the EKS and GKE components put on their GPU pools;
    on other clusters set whatever labels your GPU nodes carry."""

    count: Annotated[int, Field(ge=1, le=16)] = 1
    node_selector: dict[str, str] = Field(
        default_factory=lambda: dict(GPU_NODE_LABELS), min_length=1
    )


class Autoscaling(Frozen):
    """A ``autoscaling/v2`` HorizontalPodAutoscaler. Once it exists it owns ``spec.replicas``."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 10
    cpu_utilization: Annotated[int, Field(ge=1, le=100)] = 70
    """Target average CPU utilisation in percent of the CPU request."""
    inflight_requests_per_pod: Annotated[float, Field(gt=0, le=10_000)] | None = None
    """Also scale on the Pods metric ``model_inflight_requests`` (needs a Prometheus adapter
    that serves it through the custom metrics API)."""
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 300

    @field_validator("max_replicas")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_replicas ({low}), got {value}")
        return value


class Probes(Frozen):
    """Probe timings. The startup probe gives slow model loads ``startup_timeout_seconds``;
    readiness reacts within ``readiness_period_seconds * 2``; liveness only starts after startup
    succeeded and restarts a stuck process after three failures."""

    startup_timeout_seconds: Annotated[int, Field(ge=10, le=3600)] = 600
    startup_period_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    readiness_period_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    liveness_period_seconds: Annotated[int, Field(ge=1, le=300)] = 10
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 2

    @property
    def startup_failure_threshold(self) -> int:
        """Attempts the startup probe gets: enough to cover ``startup_timeout_seconds``."""
        return math.ceil(self.startup_timeout_seconds / self.startup_period_seconds)


class Shutdown(Frozen):
    """The stop sequence; see :func:`infra.k8s.model_deployment.termination_grace_period`."""

    prestop_sleep_seconds: Annotated[int, Field(ge=0, le=120)] = 5
    """Native ``preStop`` ``sleep`` (Kubernetes 1.30+) before SIGTERM; 0 leaves it out."""
    drain_seconds: Annotated[int, Field(ge=0, le=300)] = 3
    """``ML_ENDPOINTS_DRAIN_SECONDS``: after SIGTERM, keep serving while not ready."""
    graceful_timeout_seconds: Annotated[int, Field(ge=0, le=3600)] = 20
    """``ML_ENDPOINTS_GRACEFUL_TIMEOUT``: then finish in-flight requests within this."""


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a CIDR block (10.129.0.0/23): {error}") from None
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]


class IngressPeer(Frozen):
    """Who may reach the model server's port: pods matching ``pod_labels`` in namespaces
    matching ``namespace_labels`` (either may be left out, not both), or addresses in ``cidr``
    (a load balancer's data plane outside the cluster: an NetworkPolicy ``ipBlock``)."""

    namespace_labels: dict[str, str] | None = None
    pod_labels: dict[str, str] | None = None
    cidr: Cidr | None = Field(default=None, validate_default=True)

    @field_validator("cidr")
    @classmethod
    def _one_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        selectors = info.data.get("namespace_labels"), info.data.get("pod_labels")
        if value is None and selectors == (None, None):
            raise ValueError("give namespace_labels, pod_labels (or both), or cidr")
        if value is not None and selectors != (None, None):
            raise ValueError("a cidr peer takes no labels: list it as a peer of its own")
        return value


class GkeGatewayArgs(Frozen):
    """The Gateway is GKE's (a ``gke-l7-*`` GatewayClass): its load balancer health-checks
    ``GET /`` unless a ``HealthCheckPolicy`` says otherwise, and reaches the pods from Google's
    ranges, which the NetworkPolicy must admit (:mod:`infra.k8s.traffic`). Set by the program
    for a ``type: gke`` cluster; set it yourself for a GKE cluster reached as ``existing``."""

    proxy_only_subnets: list[Cidr] = []
    """The region's proxy-only subnet(s) (``purpose: REGIONAL_MANAGED_PROXY``): required for a
    regional Gateway (``gke-l7-rilb``, ``gke-l7-regional-external-managed``), whose Envoy
    proxies connect to the pods from there ("Firewall rules", Cloud Load Balancing)."""


class GatewayRef(Frozen):
    """The Gateway API ``Gateway`` the ``HTTPRoute`` attaches to.

    Its data plane must be allowed through the NetworkPolicy: in-cluster proxies (Envoy
    Gateway, Istio...) by ``ingress_from`` ``namespace_labels``; a cloud load balancer by its
    source ranges, ``ingress_from`` ``cidr``, or for GKE ``gke`` (Google's health-check ranges
    and the proxy-only subnet). On EKS with the AWS Gateway API Controller, VPC Lattice reaches
    the pods from 169.254.171.0/24 (aws/aws-application-networking-k8s ``docs/deploy.md``: "allow
    traffic on all ports from the 169.254.171.0/24 address range"; the managed prefix list
    ``com.amazonaws.REGION.vpc-lattice``, VPC Lattice "Control traffic using security groups"):
    list ``{cidr: 169.254.171.0/24}``; health checks come from the same fleet. Without a
    matching peer the NetworkPolicy drops the Gateway's traffic and health checks."""

    name: DnsLabel
    namespace: DnsLabel | None = None
    section_name: DnsLabel | None = None
    hostnames: list[Annotated[str, Field(pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]] = []
    path_prefix: Annotated[str, Field(pattern=r"^/")] = "/"
    gke: GkeGatewayArgs | None = None


class ServiceMonitorConfig(Frozen):
    """A Prometheus Operator ``ServiceMonitor`` for ``GET /metrics`` (needs its CRDs)."""

    interval: Annotated[str, Field(pattern=r"^\d+(ms|s|m|h)$")] = "30s"
    labels: dict[str, str] = {}
    """Labels your Prometheus' ``serviceMonitorSelector`` matches (e.g. ``release``)."""


class DashboardConfig(Frozen):
    """The Grafana dashboard as a ConfigMap that Grafana's dashboard sidecar loads (the
    kube-prometheus-stack chart's sidecar looks for the label ``grafana_dashboard: "1"``)."""

    labels: Annotated[dict[str, str], Field(min_length=1)] = {"grafana_dashboard": "1"}
    """Labels the sidecar selects ConfigMaps by (its ``label``/``labelValue`` settings)."""
    annotations: dict[str, str] = {}
    """E.g. the sidecar's folder annotation (``grafana_folder: ML``)."""
    namespace: DnsLabel | None = None
    """Where the ConfigMap goes when the sidecar watches only Grafana's namespace (default:
    the deployment's namespace)."""


class MonitoringConfig(Frozen):
    """Dashboard, alert rules and canary watch of the deployment (stack key
    ``kubernetes.monitoring``; needs ``service_monitor``, through which Prometheus scrapes what
    they read). Each part defaults to on, except the canary watch; ``null`` leaves a part out."""

    dashboard: DashboardConfig | None = DashboardConfig()
    alerts: AlertsConfig | None = AlertsConfig()
    """A ``PrometheusRule`` next to the ServiceMonitor, carrying the ServiceMonitor's labels
    (kube-prometheus-stack selects both by its ``release`` label)."""
    canary: CanaryConfig | None = None
    """How ``ml-endpoints canary --stack S`` judges a challenger after a weight change."""


class Variant(Frozen):
    """One named model behind the route (``champion``, ``challenger``...): its own Deployment,
    Service, HPA and PDB. ``weight`` is its share of traffic in percent."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=20)]
    model_uri: Annotated[str, Field(pattern=r"^(s3://|gs://|file://|/)\S+$")]
    model_name: Annotated[str, Field(pattern=contract.MODEL_NAME_PATTERN)] = "model"
    model_version: Annotated[str, Field(pattern=contract.MODEL_VERSION_PATTERN)] = "1"
    weight: Weight = 100
    image: Annotated[str, Field(pattern=r"^[^@\s]+$")] | None = None
    """Overrides the top-level ``image`` (for a challenger on a new server build)."""
    image_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = Field(
        default=None, validate_default=True
    )
    autoscaling: Autoscaling | None = None
    """Overrides the top-level ``autoscaling`` (a 10 % challenger needs fewer pods)."""

    @field_validator("image_digest")
    @classmethod
    def _digest_needs_image(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("image") is None and "image" in info.data:
            raise ValueError("a variant's image_digest needs the variant's own image")
        return value


class ServingSettings(Frozen):
    """How the variants run, whatever they serve: what a stack's ``ml-endpoints:kubernetes`` and
    the component's args share."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
    namespace: DnsLabel = "default"
    create_namespace: bool | None = None
    """True: the component creates ``namespace`` (and, on destroy, deletes it with everything in
    it); false: it must exist already (read at preview, which fails if it does not); left out:
    created unless it is one every cluster has (:data:`CLUSTER_NAMESPACES`)."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    env: Environment = {}
    resources: Resources = Resources()
    gpu: Gpu | None = None
    autoscaling: Autoscaling | None = Autoscaling()
    replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    """Fixed replica count; only without ``autoscaling`` (an HPA owns the count otherwise)."""
    probes: Probes = Probes()
    shutdown: Shutdown = Shutdown()
    pdb_max_unavailable: Annotated[int, Field(ge=1)] = 1
    zone_spread: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway"
    ingress_from: list[IngressPeer] = []
    """NetworkPolicy: besides pods of the same namespace, only these may connect to port 8080.
    List the Gateway's data plane and Prometheus when they run in other namespaces, e.g.
    ``{namespace_labels: {kubernetes.io/metadata.name: gateway-system}}``, or a load balancer
    outside the cluster by ``cidr`` (a GKE Gateway's ranges come from ``gateway.gke``)."""
    gateway: GatewayRef | None = None
    """Required with several variants: the HTTPRoute splitting traffic attaches to it (a Gateway
    in another namespace must allow routes from this one in its ``allowedRoutes``)."""
    service_monitor: ServiceMonitorConfig | None = None
    monitoring: MonitoringConfig | None = None
    service_account_name: DnsLabel = "model-server"

    @property
    def owns_namespace(self) -> bool:
        """Whether the component creates the namespace rather than adopting it."""
        if self.create_namespace is None:
            return self.namespace not in CLUSTER_NAMESPACES
        return self.create_namespace

    @model_validator(mode="after")
    def _namespace_creatable(self) -> Self:
        if self.create_namespace and self.namespace in CLUSTER_NAMESPACES:
            raise rule_error(
                ("create_namespace",),
                f"namespace {self.namespace!r} exists in every cluster: set create_namespace to "
                "false (or leave it out) to deploy into it",
                True,
            )
        return self

    @model_validator(mode="after")
    def _replicas_xor_autoscaling(self) -> Self:
        if self.replicas is not None and self.autoscaling is not None:
            raise rule_error(
                ("replicas",),
                "an HPA owns the replica count: remove replicas, or set autoscaling to null "
                "for a fixed count",
                self.replicas,
            )
        return self

    @model_validator(mode="after")
    def _monitoring_fits(self) -> Self:
        if self.monitoring is None:
            return self
        if self.service_monitor is None:
            raise rule_error(
                ("monitoring",),
                "needs service_monitor: the dashboard and the alert rules read what Prometheus "
                "scrapes through it (set service_monitor: {} and, if your Prometheus selects "
                "by label, its labels)",
                None,
            )
        alerts = self.monitoring.alerts
        limit = self.env.get(MAX_INFLIGHT_ENV)
        saturation = alerts.saturation if alerts is not None else None
        if (
            saturation is not None
            and limit is not None
            and (not revealed(limit).isdecimal() or int(revealed(limit)) != saturation.max_inflight)
        ):
            raise rule_error(
                ("monitoring", "alerts", "saturation", "max_inflight"),
                f"must equal env {MAX_INFLIGHT_ENV} ({limit}), the limit the server "
                f"enforces, got {saturation.max_inflight}",
                saturation.max_inflight,
            )
        return self

    def variants_problem(
        self, variants: Sequence[str], own_autoscaling: Collection[str]
    ) -> Problem | None:
        """What these settings lack for ``variants`` (names; ``own_autoscaling``: those that
        bring their own), located under these settings; None if nothing.

        Written once for the component's args and the stack that builds them.
        """
        if self.replicas is None and self.autoscaling is None:
            without = [name for name in variants if name not in own_autoscaling]
            if without:
                return Problem(
                    ("replicas",),
                    "without autoscaling, set a fixed replica count "
                    f"(variants {', '.join(without)})",
                )
        if self.gateway is None and len(variants) > 1:
            return Problem(
                ("gateway",),
                f"required with more than one variant ({len(variants)} given): an HTTPRoute "
                "on this Gateway splits traffic by weight",
            )
        return None


class ModelDeploymentArgs(ServingSettings):
    """Everything :class:`~infra.k8s.model_deployment.ModelDeployment` needs (stack key
    ``ml-endpoints:kubernetes``)."""

    image: Annotated[str, Field(pattern=r"^[^@\s]+$")]
    """Image reference without digest (``ghcr.io/acme/ml-endpoints:1.4.0``)."""
    image_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    """When given the pods run ``image@digest``: the exact bytes, whatever the tag does later."""
    variants: Annotated[
        list[Variant], Field(min_length=1, max_length=10), AfterValidator(weighted_split)
    ]

    @model_validator(mode="after")
    def _variants_fit(self) -> Self:
        names = [v.name for v in self.variants]
        problem = self.variants_problem(names, {v.name for v in self.variants if v.autoscaling})
        if problem is not None:
            raise problem.error()
        return self

    def image_for(self, variant: Variant) -> str:
        """The image reference a variant's pods run, pinned by digest when one is known."""
        image, digest = (
            (variant.image, variant.image_digest)
            if variant.image is not None
            else (self.image, self.image_digest)
        )
        return f"{image}@{digest}" if digest else image

    def autoscaling_for(self, variant: Variant) -> Autoscaling | None:
        """The variant's own autoscaling, else the shared one (``None``: fixed replicas)."""
        return variant.autoscaling or self.autoscaling


def load(data: Any) -> ModelDeploymentArgs:
    """Validate a ``kubernetes`` config object; :class:`~infra.validation.ConfigError` names
    the key (``kubernetes.variants[1].weight``)."""
    return validate(ModelDeploymentArgs, data, CONFIG_KEY)
