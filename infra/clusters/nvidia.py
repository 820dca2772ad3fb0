"""The NVIDIA device plugin as a DaemonSet on GPU nodes (for clusters whose GPU images do not
run it themselves, such as EKS' AL2023 NVIDIA AMI). It advertises ``nvidia.com/gpu`` to the
kubelet; without it GPU pods stay Pending. Mirrors NVIDIA's static manifest
(``deployments/static/nvidia-device-plugin.yml``), restricted to the GPU pool's label."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.k8s.gpu import GPU_NODE_LABELS, GPU_TAINT_KEY

DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin"
DEVICE_PLUGIN_VERSION = "v0.17.1"
_LABELS = {"app.kubernetes.io/name": "nvidia-device-plugin"}


def nvidia_device_plugin(
    name: str, version: str, opts: pulumi.ResourceOptions
) -> k8s.apps.v1.DaemonSet:
    """Declare the device plugin DaemonSet in ``kube-system`` (``opts`` carry the provider)."""
    return k8s.apps.v1.DaemonSet(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name="nvidia-device-plugin", namespace="kube-system", labels=_LABELS
        ),
        spec=k8s.apps.v1.DaemonSetSpecArgs(
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_LABELS),
            update_strategy=k8s.apps.v1.DaemonSetUpdateStrategyArgs(type="RollingUpdate"),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=_LABELS),
                spec=k8s.core.v1.PodSpecArgs(
                    priority_class_name="system-node-critical",
                    node_selector=dict(GPU_NODE_LABELS),
                    tolerations=[
                        k8s.core.v1.TolerationArgs(
                            key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule"
                        )
                    ],
                    containers=[
                        k8s.core.v1.ContainerArgs(
                            name="nvidia-device-plugin",
                            image=f"{DEVICE_PLUGIN_IMAGE}:{version}",
                            env=[k8s.core.v1.EnvVarArgs(name="FAIL_ON_INIT_ERROR", value="false")],
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"cpu": "50m", "memory": "64Mi"},
                                limits={"cpu": "200m", "memory": "256Mi"},
                            ),
                            security_context=k8s.core.v1.SecurityContextArgs(
                                allow_privilege_escalation=False,
                                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                            ),
                            volume_mounts=[
                                k8s.core.v1.VolumeMountArgs(
                                    name="device-plugins",
                                    mount_path="/var/lib/kubelet/device-plugins",
                                )
                            ],
                        )
                    ],
                    volumes=[
                        k8s.core.v1.VolumeArgs(
                            name="device-plugins",
                            host_path=k8s.core.v1.HostPathVolumeSourceArgs(
                                path="/var/lib/kubelet/device-plugins", type="Directory"
                            ),
                        )
                    ],
                ),
            ),
        ),
        opts=opts,
    )
