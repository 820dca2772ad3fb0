"""One module per wire protocol; each turns HTTP into rows for the runtime and back."""

from __future__ import annotations

from serving.http import Route
from serving.runtime import ModelRuntime


def all_routes(runtime: ModelRuntime) -> list[Route]:
    """Every protocol's routes, all served on one port."""
    from serving.protocols import kubernetes, oip, sagemaker, vertex

    return [
        *sagemaker.routes(runtime),
        *vertex.routes(runtime),
        *oip.routes(runtime),
        *kubernetes.routes(runtime),
    ]
