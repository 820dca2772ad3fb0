"""The transactional Vertex reconciler (:mod:`infra.gcp.vertex_deployments`) against the fake
Vertex AI API and its real failure modes, through the real google-cloud-aiplatform client.

The engine here behaves as Pulumi does with a dynamic provider: state is written only when
create/update *returns*; an exception (or a killed process) records nothing, so whatever the
failed run left in the cloud must be found again by the next run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest

from infra.gcp import vertex_deployments as vd
from infra.gcp.config import VertexEndpointArgs
from infra.gcp.vertex import deployment_props
from infra.gcp.vertex_provider import VertexDeploymentProvider
from tests.infra.gcp.conftest import (
    IMAGE_V2,
    PROJECT,
    REGION,
    SERVICE_ACCOUNT,
    vertex_args,
    vertex_config,
)
from tests.infra.gcp.fake_vertex import FakeVertex
from tests.infra.gcp.test_vertex_provider import on_the_wire

OWNER = vd.owner_of("ml-endpoints", "staging", "vertex-deployment")


def props_for(
    args: VertexEndpointArgs, endpoint: str, private: bool = False, **overrides: Any
) -> dict[str, Any]:
    props = deployment_props(args, endpoint, SERVICE_ACCOUNT)
    return dict(on_the_wire({**props, "owner": OWNER, "private": private, **overrides}))


class Engine:
    """Drives :class:`VertexDeploymentProvider` as Pulumi does: create, then diff and update;
    state only from successful returns; refresh through ``read``."""

    def __init__(self, endpoint: str, private: bool = False) -> None:
        self.provider = VertexDeploymentProvider()
        self.endpoint = endpoint
        self.private = private
        self.id: str | None = None
        self.state: dict[str, Any] | None = None

    def up(self, args: VertexEndpointArgs, **overrides: Any) -> None:
        news = props_for(args, self.endpoint, self.private, **overrides)
        if self.id is None or self.state is None:
            created = self.provider.create(news)
            self.id, self.state = created.id, dict(on_the_wire(created.outs or {}))
            return
        if self.provider.diff(self.id, self.state, news).changes:
            updated = self.provider.update(self.id, self.state, news)
            self.state = dict(on_the_wire(updated.outs or {}))

    def refresh(self) -> None:
        assert self.id is not None
        assert self.state is not None
        refreshed = self.provider.read(self.id, self.state)
        self.state = dict(on_the_wire(refreshed.outs or {})) if refreshed.id else None

    def destroy(self) -> None:
        assert self.id is not None
        assert self.state is not None
        self.provider.delete(self.id, self.state)


def private_endpoint(fake: FakeVertex) -> tuple[str, dict[str, Any]]:
    """A VPC-peered endpoint and a one-variant config."""
    endpoint = fake.add_endpoint(PROJECT, REGION, "p", "77", network="projects/1/global/networks/n")
    config = vertex_config(traffic={"champion": 100})
    config["variants"] = config["variants"][:1]
    return endpoint, config


def deployments(fake: FakeVertex, endpoint: str) -> dict[str, list[str]]:
    """Live deployed-model IDs by display name (a second copy shows as two IDs)."""
    found: dict[str, list[str]] = {}
    for deployed in fake.endpoints[endpoint]["deployedModels"]:
        found.setdefault(deployed["displayName"], []).append(deployed["id"])
    return found


def copies(fake: FakeVertex, endpoint: str) -> dict[str, int]:
    """How many live deployments each variant has (1 each, or a copy was made)."""
    return {name: len(ids) for name, ids in deployments(fake, endpoint).items()}


def weights(fake: FakeVertex, champion: int, challenger: int) -> VertexEndpointArgs:
    return vertex_args(fake, traffic={"champion": champion, "challenger": challenger})


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_uploaded_models_carry_the_owner_and_deployments_a_derived_id(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 90, 10))
    assert engine.state is not None
    for record in engine.state["deployed"].values():
        labels = fake_vertex.models[record["model"]]["labels"]
        assert labels[vd.OWNER_LABEL] == OWNER
        assert labels[vd.RELEASE_LABEL] == record["release"]
        assert record["deployed_model_id"] == vd.deployed_model_id_for(record["model"])
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 90, "challenger": 10}


def test_a_deploy_that_times_out_and_finishes_later_is_adopted_not_copied(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    """The client gives up, the operation keeps running (python-aiplatform waits forever:
    ``aiplatform/models.py`` ``operation_future.result(timeout=None)``). Pulumi records nothing
    for the failed create; the next ``up`` must wait for the operation and adopt its result."""
    engine = Engine(endpoint_name)
    held = fake_vertex.hold_next("deployModel")
    with pytest.raises(vd.VertexDeploymentError, match="keeps running") as error:
        engine.up(weights(fake_vertex, 100, 0), timeout_seconds=1.0)
    assert "next `pulumi up`" in str(error.value)
    assert engine.state is None
    held.finish()  # the service completes the deployment after the client left

    engine.up(weights(fake_vertex, 100, 0))

    assert deployments(fake_vertex, endpoint_name).keys() == {"champion", "challenger"}
    assert all(len(ids) == 1 for ids in deployments(fake_vertex, endpoint_name).values())
    assert fake_vertex.methods("uploadModel").count("uploadModel") == 2, "no second upload"
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 100, "challenger": 0}
    assert len(fake_vertex.models) == 2
    assert engine.state is not None
    assert engine.state["cleanup_pending"] == []


def test_a_running_operation_is_awaited_and_nothing_changes_while_it_runs(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    engine = Engine(endpoint_name)
    held = fake_vertex.hold_next("deployModel")
    with pytest.raises(vd.VertexDeploymentError):
        engine.up(weights(fake_vertex, 100, 0), timeout_seconds=1.0)
    mark = len(fake_vertex.calls)

    with pytest.raises(vd.VertexDeploymentError, match="still has running operations"):
        engine.up(weights(fake_vertex, 100, 0), timeout_seconds=1.0)

    changes = ("uploadModel", "deployModel", "undeployModel", "deleteModel", "updateEndpoint")
    assert [c.method for c in fake_vertex.calls[mark:] if c.method in changes] == []
    held.finish()
    engine.up(weights(fake_vertex, 100, 0))
    assert all(len(ids) == 1 for ids in deployments(fake_vertex, endpoint_name).values())


def test_a_deployment_whose_response_was_lost_is_rolled_back(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    """The service deployed, the caller saw 503: the rollback finds the deployment by its model
    and removes it, so nothing runs that no state knows about."""
    engine = Engine(endpoint_name)
    fake_vertex.lose_next_response("deployModel")
    with pytest.raises(vd.VertexDeploymentError, match="503"):
        engine.up(weights(fake_vertex, 100, 0))
    assert fake_vertex.endpoints[endpoint_name]["deployedModels"] == []
    assert fake_vertex.models == {}


def test_any_exception_rolls_back_not_only_api_errors(
    fake_vertex: FakeVertex, endpoint_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: vd.VertexApi, split: dict[str, int]) -> None:
        raise KeyError("a bug after both deployments")

    monkeypatch.setattr(vd.VertexApi, "set_split", broken)
    engine = Engine(endpoint_name)
    with pytest.raises(KeyError, match="a bug after both deployments"):
        engine.up(weights(fake_vertex, 90, 10))  # the split must move: set_split runs
    assert fake_vertex.endpoints[endpoint_name]["deployedModels"] == []
    assert fake_vertex.models == {}


def test_a_killed_process_leaves_nothing_the_next_up_does_not_find(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    """SIGKILL runs no handler: whatever the run started is found by its owner label."""
    held = fake_vertex.hold_next("deployModel")
    props = props_for(weights(fake_vertex, 100, 0), endpoint_name)
    # The child imports only the reconciler module (spawn pickles the target by reference).
    child = multiprocessing.get_context("spawn").Process(target=vd.reconcile, args=(props, {}))
    child.start()
    try:
        wait_for(lambda: held.started, seconds=120)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(10)
    held.finish()

    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 100, 0))

    assert copies(fake_vertex, endpoint_name) == {"champion": 1, "challenger": 1}
    assert len(fake_vertex.models) == 2
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 100, "challenger": 0}


def test_an_interrupted_release_change_is_adopted_not_deployed_twice(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 90, 10))
    config = vertex_config(traffic={"champion": 90, "challenger": 10})
    config["variants"][1]["image"] = IMAGE_V2
    # The new release is deployed and the split applied, but the caller sees 503: the new
    # deployment now holds traffic, so the rollback cannot undeploy it.
    fake_vertex.lose_next_response("updateEndpoint")
    with pytest.raises(vd.VertexDeploymentError, match="next `pulumi up` adopts or removes"):
        engine.up(vertex_args(fake_vertex, **config))
    assert copies(fake_vertex, endpoint_name) == {"champion": 1, "challenger": 2}
    mark = len(fake_vertex.calls)

    engine.up(vertex_args(fake_vertex, **config))

    assert [c.method for c in fake_vertex.calls[mark:] if c.method == "deployModel"] == []
    assert copies(fake_vertex, endpoint_name) == {"champion": 1, "challenger": 1}
    assert engine.state is not None
    image = fake_vertex.models[engine.state["deployed"]["challenger"]["model"]]["containerSpec"]
    assert image["imageUri"] == IMAGE_V2
    assert len(fake_vertex.models) == 2


def test_refresh_sees_console_drift_and_the_next_up_repairs_it(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 90, 10))
    fake_vertex.console_scale(endpoint_name, "champion", 3, 7)
    fake_vertex.console_split(endpoint_name, {"champion": 50, "challenger": 50})

    engine.refresh()

    assert engine.state is not None
    champion = next(v for v in engine.state["variants"] if v["name"] == "champion")
    assert (champion["min_replicas"], champion["max_replicas"]) == (3, 7)
    assert engine.state["traffic"] == {"champion": 50, "challenger": 50}
    mark = len(fake_vertex.calls)
    engine.up(weights(fake_vertex, 90, 10))
    methods = [c.method for c in fake_vertex.calls[mark:]]
    assert "mutateDeployedModel" in methods
    assert "deployModel" not in methods
    live = fake_vertex.deployed_by_name(endpoint_name)["champion"]["dedicatedResources"]
    assert (live["minReplicaCount"], live["maxReplicaCount"]) == (1, 3)
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 90, "challenger": 10}


def test_refresh_lists_an_unrecorded_owned_deployment_for_the_next_update(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 100, 0))
    parent = f"projects/{PROJECT}/locations/{REGION}"
    stray = fake_vertex.console_upload(parent, "churn-old", {vd.OWNER_LABEL: OWNER})
    stray_id = fake_vertex.console_deploy(endpoint_name, stray, "old")

    engine.refresh()
    assert engine.state is not None
    assert stray_id in [p["deployed_model_id"] for p in engine.state["cleanup_pending"]]

    engine.up(weights(fake_vertex, 100, 0))
    assert "old" not in deployments(fake_vertex, endpoint_name)
    assert stray not in fake_vertex.models


def test_labels_alone_change_in_place(fake_vertex: FakeVertex, endpoint_name: str) -> None:
    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 90, 10))
    mark = len(fake_vertex.calls)

    engine.up(
        vertex_args(
            fake_vertex, traffic={"champion": 90, "challenger": 10}, labels={"team": "search"}
        )
    )

    methods = [c.method for c in fake_vertex.calls[mark:]]
    assert "uploadModel" not in methods
    assert "deployModel" not in methods
    assert methods.count("updateModel") == 2
    assert engine.state is not None
    for record in engine.state["deployed"].values():
        labels = fake_vertex.models[record["model"]]["labels"]
        assert labels["team"] == "search"
        assert labels[vd.OWNER_LABEL] == OWNER


def test_a_private_endpoint_replaces_its_one_deployment(fake_vertex: FakeVertex) -> None:
    """https://cloud.google.com/vertex-ai/docs/predictions/using-private-endpoints: "Only support
    one model per private endpoint"; the fake refuses a second deployed model like the service."""
    endpoint, config = private_endpoint(fake_vertex)
    engine = Engine(endpoint, private=True)
    engine.up(vertex_args(fake_vertex, **config))
    config["variants"][0]["image"] = IMAGE_V2

    engine.up(vertex_args(fake_vertex, **config))

    assert copies(fake_vertex, endpoint) == {"champion": 1}
    assert fake_vertex.split_by_name(endpoint) == {"champion": 100}
    assert len(fake_vertex.models) == 1


def test_a_failed_private_redeploy_restores_the_old_release(fake_vertex: FakeVertex) -> None:
    endpoint, config = private_endpoint(fake_vertex)
    engine = Engine(endpoint, private=True)
    engine.up(vertex_args(fake_vertex, **config))
    assert engine.state is not None
    old_model = engine.state["deployed"]["champion"]["model"]
    config["variants"][0]["image"] = IMAGE_V2
    fake_vertex.fail_next("deployModel", "image cannot be pulled")

    with pytest.raises(vd.VertexDeploymentError, match="image cannot be pulled"):
        engine.up(vertex_args(fake_vertex, **config))

    live = fake_vertex.deployed_by_name(endpoint)["champion"]
    assert live["model"] == old_model
    assert fake_vertex.split_by_name(endpoint) == {"champion": 100}


def test_an_accelerator_the_client_lacks_fails_clearly_before_any_upload(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    args = weights(fake_vertex, 100, 0)
    props = props_for(args, endpoint_name)
    props["variants"][1]["accelerator_type"] = "NVIDIA_B300"
    with pytest.raises(vd.VertexDeploymentError, match="'NVIDIA_B300' is not known") as error:
        VertexDeploymentProvider().create(props)
    assert "google-cloud-aiplatform" in str(error.value)
    assert "NVIDIA_TESLA_T4" in str(error.value)
    assert fake_vertex.methods("uploadModel") == []


def test_destroy_removes_owned_leftovers_too(fake_vertex: FakeVertex, endpoint_name: str) -> None:
    engine = Engine(endpoint_name)
    engine.up(weights(fake_vertex, 100, 0))
    parent = f"projects/{PROJECT}/locations/{REGION}"
    fake_vertex.console_upload(parent, "never-deployed", {vd.OWNER_LABEL: OWNER})
    engine.destroy()
    assert fake_vertex.endpoints[endpoint_name]["deployedModels"] == []
    assert fake_vertex.models == {}
