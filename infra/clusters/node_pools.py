"""Settings every cluster's node pools share: scaling bounds and the replacement note."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from infra.validation import Frozen

REPLACEMENT_NOTE = (
    "some node-pool settings cannot be changed in place: changing them REPLACES the pool, "
    "draining and recreating its nodes. Add a new pool and move workloads instead when "
    "downtime matters"
)
"""Said in the cluster components' docs; each cluster names its own replacing fields (GKE:
:data:`infra.clusters.gke.POOL_REPLACEMENT_NOTE`, logged on every preview)."""


class Scaling(Frozen):
    """Node count bounds for the cluster autoscaler (``desired`` is only the starting size)."""

    min: Annotated[int, Field(ge=0, le=1000)]
    desired: Annotated[int, Field(ge=0, le=1000)]
    max: Annotated[int, Field(ge=1, le=1000)]

    @field_validator("desired")
    @classmethod
    def _desired_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and value < low:
            raise ValueError(f"must be at least min ({low}), got {value}")
        return value

    @field_validator("max")
    @classmethod
    def _max_not_below_desired(cls, value: int, info: ValidationInfo) -> int:
        for key in ("desired", "min"):
            other = info.data.get(key)
            if other is not None and value < other:
                raise ValueError(f"must be at least {key} ({other}), got {value}")
        return value
