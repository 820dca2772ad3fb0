"""What GPU node pools and GPU pods agree on: the extended resource, the taint and the label.

The EKS and GKE components taint their GPU pools with :data:`GPU_TAINT_KEY` (``NoSchedule``,
so ordinary pods stay off expensive nodes) and label them with :data:`GPU_NODE_LABELS`; the
model pods ask for :data:`GPU_RESOURCE`, tolerate the taint and select the label.
"""

from __future__ import annotations

GPU_RESOURCE = "nvidia.com/gpu"
"""Extended resource advertised by the NVIDIA device plugin (GKE's driver installer too)."""

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"

GPU_NODE_LABELS: dict[str, str] = {"ml-endpoints.io/accelerator": "nvidia"}
"""Label on every GPU node the cluster components create; the default GPU node selector."""
