"""Pulumi dynamic provider: models uploaded and deployed to a Vertex AI endpoint, with the traffic
split given by variant name.

pulumi-gcp can create the endpoint but not upload or deploy a model, and its ``traffic_split`` is
keyed by deployed-model IDs that only exist after deployment. This provider fills that gap; the
work, and how no failure leaves a deployment untracked, is in
:mod:`infra.gcp.vertex_deployments`.

**This module path and the class name are part of every stack's state.** Pulumi pickles the
provider *by reference* (``pulumi/dynamic/dynamic.py`` ``serialize_provider``: dill stores an
importable class as ``infra.gcp.vertex_provider`` / ``VertexDeploymentProvider``) and runs the
current code's ``read`` and ``delete`` on old state. Keep both names here, keep the class without
state, and keep old state readable (``tests/infra/gcp/test_vertex_legacy_state.py``).
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from infra.gcp.vertex_deployments import (
    CALL_TIMEOUT_SECONDS,
    CONTAINER_PORT,
    CPU_METRIC,
    DUTY_CYCLE_METRIC,
    HEALTH_ROUTE,
    INPUT_KEYS,
    PREDICT_ROUTE,
    REPLACE_KEYS,
    VertexDeploymentError,
    inputs_of,
    reconcile,
    refresh,
    release_of,
    scaling_of,
    teardown,
)

__all__ = [
    "CALL_TIMEOUT_SECONDS",
    "CONTAINER_PORT",
    "CPU_METRIC",
    "DUTY_CYCLE_METRIC",
    "HEALTH_ROUTE",
    "PREDICT_ROUTE",
    "VertexDeploymentError",
    "VertexDeploymentProvider",
    "inputs_of",
    "release_of",
    "scaling_of",
]


class VertexDeploymentProvider(ResourceProvider):
    """Create / diff / update / read / delete for :class:`infra.gcp.vertex.VertexDeployment`."""

    serialize_as_secret_always = False  # no secrets are captured: keep the state readable

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = reconcile(props, {})
        return CreateResult(id_=str(outs["endpoint"]) + "/deployment", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = inputs_of(olds), inputs_of(news)
        replaces = [key for key in REPLACE_KEYS if old[key] != new[key]]
        changed = [key for key in INPUT_KEYS if old[key] != new[key]]
        # States written before ownership labels existed take one update that adds them.
        owner_changed = olds.get("owner") != news.get("owner")
        return DiffResult(
            changes=bool(changed or olds.get("cleanup_pending") or owner_changed),
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=reconcile(news, olds))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """``pulumi refresh``: the live endpoint as it is (console changes show in the next
        diff); a deleted endpoint drops the resource."""
        outs = refresh(props)
        if outs is None:
            return ReadResult(id_=None, outs={})
        inputs = {**{k: outs.get(k) for k in INPUT_KEYS}, "deployed": None, "cleanup_pending": None}
        for key in ("owner", "private"):
            if key in outs:
                inputs[key] = outs[key]
        return ReadResult(id_=id_, outs=outs, inputs=inputs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        teardown(props)
