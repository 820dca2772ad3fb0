"""The pod template of one model variant: container, probes, shutdown, security and scheduling.

Shutdown, and why there is a ``preStop`` sleep
-----------------------------------------------
When a pod is deleted, the kubelet runs ``preStop`` and the control plane removes the pod from
the Service's EndpointSlices *at the same time*; kube-proxy, CoreDNS caches and Gateway data
planes (Envoy and cloud load balancers) learn about it seconds later and keep sending new
requests meanwhile. The server's own answer to SIGTERM (turn not-ready, keep serving for
``ML_ENDPOINTS_DRAIN_SECONDS``, then finish in-flight requests within
``ML_ENDPOINTS_GRACEFUL_TIMEOUT``) covers the in-cluster part, but a few seconds of drain are
short for external load balancers. A ``preStop`` pause postpones SIGTERM while the pod still
serves normally, so routing converges before draining starts. We use the native ``sleep``
lifecycle action (beta and on by default since Kubernetes 1.30) rather than ``exec: sleep``:
it needs no ``sleep`` binary in the image and no shell in a read-only root filesystem. On
older clusters set ``shutdown.prestop_sleep_seconds: 0``; the server's drain window remains.

``terminationGracePeriodSeconds`` counts from the deletion, ``preStop`` included, so it is
``prestop + drain + graceful`` plus a margin for the process to exit; only then does SIGKILL
come (see :func:`termination_grace_period`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.config import ModelDeploymentArgs, Shutdown, Variant
from infra.k8s.gpu import GPU_RESOURCE, GPU_TAINT_KEY
from infra.secret_values import Secret, to_input
from serving import contract

CONTAINER_NAME = "model-server"
CONTAINER_PORT = contract.PORT
PORT_NAME = "http"
LIVENESS_PATH = contract.LIVENESS_PATH
READINESS_PATH = contract.READINESS_PATH
METRICS_PATH = contract.METRICS_PATH
TEMP_DIR = "/tmp"
RUN_AS_USER = contract.RUN_AS_USER
EXIT_MARGIN_SECONDS = 5
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def termination_grace_period(shutdown: Shutdown) -> int:
    """Seconds before SIGKILL: pre-stop pause + drain window + in-flight deadline + margin."""
    return (
        shutdown.prestop_sleep_seconds
        + shutdown.drain_seconds
        + shutdown.graceful_timeout_seconds
        + EXIT_MARGIN_SECONDS
    )


def selector_labels(args: ModelDeploymentArgs, variant: Variant) -> dict[str, str]:
    """Labels that pick one variant's pods (Deployment selector, Service, PDB)."""
    return {"app.kubernetes.io/name": args.name, "ml-endpoints.io/variant": variant.name}


def common_labels(args: ModelDeploymentArgs, variant: Variant | None = None) -> dict[str, str]:
    """Recommended ``app.kubernetes.io`` labels on every object."""
    labels = {
        "app.kubernetes.io/name": args.name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "ml-endpoints",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    if variant is not None:
        labels.update(selector_labels(args, variant))
    return labels


def _env(
    args: ModelDeploymentArgs, variant: Variant, secret_name: pulumi.Input[str] | None
) -> list[k8s.core.v1.EnvVarArgs]:
    """The container's environment; secret values are read from the Secret ``secret_name``
    (:func:`secret_env`), so the Deployment holds only a reference."""
    values: Mapping[str, str | Secret] = {
        contract.MODEL_URI_ENV: variant.model_uri,
        contract.MODEL_NAME_ENV: variant.model_name,
        contract.MODEL_VERSION_ENV: variant.model_version,
        contract.VARIANT_ENV: variant.name,
        contract.WORKERS_ENV: str(args.workers),
        contract.DRAIN_SECONDS_ENV: str(args.shutdown.drain_seconds),
        contract.GRACEFUL_TIMEOUT_ENV: str(args.shutdown.graceful_timeout_seconds),
        **args.env,
    }
    return [
        k8s.core.v1.EnvVarArgs(
            name=key,
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=key)
            ),
        )
        if isinstance(value, Secret)
        else k8s.core.v1.EnvVarArgs(name=key, value=value)
        for key, value in values.items()
    ]


def secret_env(args: ModelDeploymentArgs) -> dict[str, pulumi.Input[str]]:
    """The Secret data of the pods' secret environment values (as secret Outputs)."""
    return {key: to_input(value) for key, value in args.env.items() if isinstance(value, Secret)}


def _http_probe(path: str, *, period: int, timeout: int, failures: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=PORT_NAME),
        period_seconds=period,
        timeout_seconds=timeout,
        failure_threshold=failures,
        success_threshold=1,
    )


def _resources(args: ModelDeploymentArgs) -> k8s.core.v1.ResourceRequirementsArgs:
    res = args.resources
    requests = {"cpu": res.cpu_request, "memory": res.memory_request}
    limits = {"cpu": res.cpu_limit, "memory": res.memory_limit}
    if args.gpu is not None:
        # Extended resources: the request must equal the limit, so give both.
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(args.gpu.count)
    return k8s.core.v1.ResourceRequirementsArgs(requests=requests, limits=limits)


def _container(
    args: ModelDeploymentArgs, variant: Variant, secret_name: pulumi.Input[str] | None
) -> k8s.core.v1.ContainerArgs:
    probes = args.probes
    prestop = args.shutdown.prestop_sleep_seconds
    return k8s.core.v1.ContainerArgs(
        name=CONTAINER_NAME,
        image=args.image_for(variant),
        image_pull_policy="IfNotPresent",
        args=["serve"],
        ports=[
            k8s.core.v1.ContainerPortArgs(
                name=PORT_NAME, container_port=CONTAINER_PORT, protocol="TCP"
            )
        ],
        env=_env(args, variant, secret_name),
        resources=_resources(args),
        startup_probe=_http_probe(
            READINESS_PATH,
            period=probes.startup_period_seconds,
            timeout=probes.timeout_seconds,
            failures=probes.startup_failure_threshold,
        ),
        readiness_probe=_http_probe(
            READINESS_PATH,
            period=probes.readiness_period_seconds,
            timeout=probes.timeout_seconds,
            failures=2,
        ),
        liveness_probe=_http_probe(
            LIVENESS_PATH,
            period=probes.liveness_period_seconds,
            timeout=probes.timeout_seconds,
            failures=3,
        ),
        lifecycle=(
            k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    sleep=k8s.core.v1.SleepActionArgs(seconds=prestop)
                )
            )
            if prestop > 0
            else None
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=RUN_AS_USER,
            run_as_group=RUN_AS_USER,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        ),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TEMP_DIR)],
        termination_message_policy="FallbackToLogsOnError",
    )


def _spread(
    args: ModelDeploymentArgs, variant: Variant
) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    selector = k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(args, variant))
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            topology_key=key,
            max_skew=1,
            when_unsatisfiable=when,
            label_selector=selector,
            # Spread each rollout's pods on their own, not old and new together.
            match_label_keys=["pod-template-hash"],
        )
        for key, when in ((ZONE_KEY, args.zone_spread), (HOST_KEY, "ScheduleAnyway"))
    ]


def pod_template(
    args: ModelDeploymentArgs, variant: Variant, secret_name: pulumi.Input[str] | None = None
) -> k8s.core.v1.PodTemplateSpecArgs:
    """The pod template of ``variant``'s Deployment; ``secret_name`` is the Secret holding the
    secret environment values (needed when ``args.env`` has any)."""
    gpu = args.gpu
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=common_labels(args, variant)),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=args.service_account_name,
            # IRSA and GKE workload identity bring their own credentials; the pod never needs
            # to talk to the Kubernetes API.
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=termination_grace_period(args.shutdown),
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True,
                run_as_user=RUN_AS_USER,
                run_as_group=RUN_AS_USER,
                fs_group=RUN_AS_USER,
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            containers=[_container(args, variant, secret_name)],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="tmp",
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                        size_limit=args.resources.temp_size_limit
                    ),
                )
            ],
            topology_spread_constraints=_spread(args, variant),
            node_selector=dict(gpu.node_selector) if gpu else None,
            tolerations=(
                [
                    k8s.core.v1.TolerationArgs(
                        key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule"
                    )
                ]
                if gpu
                else None
            ),
        ),
    )
