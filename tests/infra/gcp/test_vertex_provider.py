"""The dynamic provider's create / diff / update / delete, driven as the Pulumi engine drives it,
against the fake Vertex AI API through the real google-cloud-aiplatform client."""

from __future__ import annotations

from typing import Any

import pytest

from infra.gcp.config import VertexEndpointArgs
from infra.gcp.vertex import deployment_props
from infra.gcp.vertex_provider import (
    HEALTH_ROUTE,
    PREDICT_ROUTE,
    VertexDeploymentError,
    VertexDeploymentProvider,
)
from tests.infra.gcp.conftest import IMAGE, IMAGE_V2, SERVICE_ACCOUNT, vertex_args, vertex_config
from tests.infra.gcp.fake_vertex import FakeVertex

CHANGES = ("uploadModel", "deployModel", "undeployModel", "mutateDeployedModel", "deleteModel")


def on_the_wire(value: Any) -> Any:
    """What the engine hands a dynamic provider: every number a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: on_the_wire(v) for k, v in value.items()}
    return [on_the_wire(v) for v in value]


class Engine:
    """Create on the first ``up``, then diff and update; ``destroy`` deletes. Keeps the state
    as the engine does, numbers and all."""

    def __init__(self, endpoint: str) -> None:
        self.provider = VertexDeploymentProvider()
        self.endpoint = endpoint
        self.id: str | None = None
        self.state: dict[str, Any] = {}

    def inputs(self, args: VertexEndpointArgs) -> dict[str, Any]:
        props = deployment_props(args, self.endpoint, SERVICE_ACCOUNT)
        return dict(on_the_wire({**props, "deployed": None, "cleanup_pending": None}))

    def up(self, args: VertexEndpointArgs) -> bool:
        """Returns whether the engine would call create/update."""
        news = self.inputs(args)
        if self.id is None:
            created = self.provider.create(news)
            self.id, self.state = created.id, on_the_wire(created.outs or {})
            return True
        diff = self.provider.diff(self.id, self.state, news)
        assert not diff.replaces, diff.replaces
        if diff.changes:
            self.state = on_the_wire(self.provider.update(self.id, self.state, news).outs or {})
        return bool(diff.changes)

    def destroy(self) -> None:
        assert self.id is not None
        self.provider.delete(self.id, self.state)

    def deployed_id(self, variant: str) -> str:
        return str(self.state["deployed"][variant]["deployed_model_id"])


def weights(fake: FakeVertex, champion: int, challenger: int) -> VertexEndpointArgs:
    """The two-variant config with this split, pointed at ``fake``."""
    return vertex_args(fake, traffic={"champion": champion, "challenger": challenger})


@pytest.fixture
def engine(endpoint_name: str) -> Engine:
    return Engine(endpoint_name)


def since(fake: FakeVertex, mark: int, *names: str) -> list[str]:
    return [c.method for c in fake.calls[mark:] if not names or c.method in names]


def test_create_uploads_and_deploys_every_variant(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 100, 0))

    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 100, "challenger": 0}
    assert fake_vertex.methods(*CHANGES) == ["uploadModel", "deployModel"] * 2
    model = fake_vertex.models[engine.state["deployed"]["challenger"]["model"]]
    container = model["containerSpec"]
    assert container["imageUri"] == IMAGE
    assert container["ports"] == [{"containerPort": 8080}]
    assert (container["predictRoute"], container["healthRoute"]) == (PREDICT_ROUTE, HEALTH_ROUTE)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "MODEL_NAME": "churn",
        "MODEL_VERSION": "2",
        "ML_ENDPOINTS_VARIANT": "challenger",
    }
    assert model["artifactUri"] == "gs://ml-models/churn/v2"
    assert model["labels"]["ml-endpoints-variant"] == "challenger"

    deployed = {d["displayName"]: d for d in fake_vertex.endpoints[endpoint_name]["deployedModels"]}
    challenger = deployed["challenger"]
    assert challenger["serviceAccount"] == SERVICE_ACCOUNT
    resources = challenger["dedicatedResources"]
    assert resources["machineSpec"] == {
        "machineType": "n1-standard-4",
        "acceleratorType": 5,  # NVIDIA_TESLA_T4, sent as an integer enum
        "acceleratorCount": 1,
    }
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 1)
    assert resources["autoscalingMetricSpecs"] == [
        {
            "metricName": "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle",
            "target": 70,
        }
    ]
    assert deployed["champion"]["dedicatedResources"]["autoscalingMetricSpecs"][0]["target"] == 60
    assert engine.id == endpoint_name + "/deployment"
    assert engine.state["cleanup_pending"] == []
    assert "credentials" not in repr(engine.state).lower()


def test_weights_shift_by_name_without_redeploying(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 100, 0))
    ids = {name: engine.deployed_id(name) for name in ("champion", "challenger")}
    mark = len(fake_vertex.calls)

    assert engine.up(weights(fake_vertex, 90, 10))
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 90, "challenger": 10}
    assert engine.up(weights(fake_vertex, 0, 100))
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 0, "challenger": 100}

    assert since(fake_vertex, mark, *CHANGES) == []
    assert since(fake_vertex, mark, "updateEndpoint") == ["updateEndpoint"] * 2
    assert {name: engine.deployed_id(name) for name in ids} == ids
    assert not engine.up(weights(fake_vertex, 0, 100)), "no change, no update"


def test_new_image_deploys_before_undeploying_the_old(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 90, 10))
    old_id = engine.deployed_id("challenger")
    old_model = engine.state["deployed"]["challenger"]["model"]
    config = vertex_config(traffic={"champion": 90, "challenger": 10})
    config["variants"][1]["image"] = IMAGE_V2
    mark = len(fake_vertex.calls)

    assert engine.up(vertex_args(fake_vertex, **config))

    calls = fake_vertex.calls[mark:]
    assert [c.method for c in calls if c.method in (*CHANGES, "updateEndpoint")] == [
        "uploadModel",
        "deployModel",
        "updateEndpoint",
        "undeployModel",
        "deleteModel",
    ]
    deploy = next(c for c in calls if c.method == "deployModel")
    assert deploy.body["trafficSplit"]["0"] == 0, "the new deployment joins without traffic"
    undeploy = next(c for c in calls if c.method == "undeployModel")
    assert undeploy.body["deployedModelId"] == old_id
    assert next(c for c in calls if c.method == "deleteModel").target == old_model
    new_id = engine.deployed_id("challenger")
    assert new_id != old_id
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 90, "challenger": 10}
    live = fake_vertex.endpoints[endpoint_name]["trafficSplit"]
    assert live[new_id] == 10
    assert old_id not in live
    assert old_model not in fake_vertex.models


def test_machine_change_redeploys_and_scaling_change_mutates_in_place(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 50, 50))
    config = vertex_config(traffic={"champion": 50, "challenger": 50})
    config["variants"][0]["min_replicas"] = 2
    config["variants"][0]["max_replicas"] = 5
    mark = len(fake_vertex.calls)

    engine.up(vertex_args(fake_vertex, **config))
    assert since(fake_vertex, mark, *CHANGES) == ["mutateDeployedModel"]
    champion = next(
        d
        for d in fake_vertex.endpoints[endpoint_name]["deployedModels"]
        if d["displayName"] == "champion"
    )
    assert champion["dedicatedResources"]["minReplicaCount"] == 2
    assert champion["dedicatedResources"]["maxReplicaCount"] == 5

    config["variants"][0]["machine_type"] = "n1-highmem-8"
    mark = len(fake_vertex.calls)
    engine.up(vertex_args(fake_vertex, **config))
    assert since(fake_vertex, mark, *CHANGES) == [
        "uploadModel",
        "deployModel",
        "undeployModel",
        "deleteModel",
    ]
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 50, "challenger": 50}


def test_removing_a_variant_undeploys_it_and_deletes_its_model(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 0, 100))
    champion_model = engine.state["deployed"]["champion"]["model"]
    config = vertex_config(traffic={"challenger": 100})
    config["variants"] = config["variants"][1:]
    mark = len(fake_vertex.calls)

    engine.up(vertex_args(fake_vertex, **config))

    assert since(fake_vertex, mark, *CHANGES) == ["undeployModel", "deleteModel"]
    assert fake_vertex.split_by_name(endpoint_name) == {"challenger": 100}
    assert set(engine.state["deployed"]) == {"challenger"}
    assert champion_model not in fake_vertex.models


def test_delete_undeploys_everything_and_removes_the_models(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 90, 10))
    engine.destroy()

    assert fake_vertex.endpoints[endpoint_name]["deployedModels"] == []
    assert fake_vertex.endpoints[endpoint_name]["trafficSplit"] == {}
    assert fake_vertex.models == {}


def test_delete_after_the_endpoint_is_gone_still_removes_the_models(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 100, 0))
    del fake_vertex.endpoints[endpoint_name]  # deleted outside Pulumi, with its deployments

    engine.destroy()

    assert fake_vertex.models == {}


def test_diff_replaces_only_for_another_endpoint_and_ignores_float_noise(
    fake_vertex: FakeVertex, engine: Engine
) -> None:
    engine.up(weights(fake_vertex, 100, 0))
    news = engine.inputs(weights(fake_vertex, 100, 0))
    assert engine.provider.diff("id", engine.state, news).changes is False

    moved = {**news, "endpoint": news["endpoint"].replace("4242", "4243")}
    diff = engine.provider.diff("id", engine.state, moved)
    assert diff.changes
    assert diff.replaces == ["endpoint"]
    reweighted = engine.provider.diff(
        "id", engine.state, engine.inputs(weights(fake_vertex, 10, 90))
    )
    assert reweighted.changes
    assert reweighted.replaces == []


def test_missing_endpoint_is_a_clear_404(fake_vertex: FakeVertex) -> None:
    engine = Engine("projects/ml-project/locations/us-central1/endpoints/999")
    with pytest.raises(VertexDeploymentError) as error:
        engine.up(vertex_args(fake_vertex))
    message = str(error.value)
    assert "reading endpoint projects/ml-project/locations/us-central1/endpoints/999" in message
    assert "not found (404)" in message
    assert fake_vertex.models == {}


def test_failed_deploy_names_the_variant_and_rolls_back(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    config = vertex_config(traffic={"champion": 100})
    config["variants"] = config["variants"][:1]
    engine.up(vertex_args(fake_vertex, **config))
    state = engine.state
    fake_vertex.fail_next("deployModel", "Machine type n1-standard-4 is out of stock in zone")

    with pytest.raises(VertexDeploymentError) as error:
        engine.up(weights(fake_vertex, 90, 10))

    message = str(error.value)
    assert "deploying variant 'challenger'" in message
    assert "failed: Machine type n1-standard-4 is out of stock" in message
    assert engine.state is state, "the engine keeps the old state"
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 100}
    assert list(fake_vertex.models) == [state["deployed"]["champion"]["model"]], "rolled back"


def test_failed_upload_on_create_leaves_nothing_behind(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    fake_vertex.fail_next("uploadModel", "image not found", code=5)
    with pytest.raises(VertexDeploymentError, match="uploading the model of variant 'champion'"):
        engine.up(weights(fake_vertex, 100, 0))
    assert fake_vertex.models == {}
    assert fake_vertex.endpoints[endpoint_name]["deployedModels"] == []


def test_operation_that_never_finishes_times_out_clearly(
    fake_vertex: FakeVertex, engine: Engine
) -> None:
    fake_vertex.stall_next("deployModel")
    args = weights(fake_vertex, 100, 0)
    news = {**engine.inputs(args), "timeout_seconds": 1.0}
    with pytest.raises(VertexDeploymentError) as error:
        engine.provider.create(news)
    assert "did not finish within 1 s" in str(error.value)
    assert "deploying variant 'champion'" in str(error.value)


def test_failed_cleanup_is_kept_in_state_and_retried(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 100, 0))
    old_id = engine.deployed_id("challenger")
    config = vertex_config(traffic={"champion": 100, "challenger": 0})
    config["variants"][1]["image"] = IMAGE_V2
    fake_vertex.fail_next("undeployModel", "internal error", code=13)

    engine.up(vertex_args(fake_vertex, **config))

    pending = engine.state["cleanup_pending"]
    assert [p["deployed_model_id"] for p in pending] == [old_id]
    assert "internal error" in pending[0]["error"]
    assert engine.up(vertex_args(fake_vertex, **config)), "pending cleanup forces an update"
    assert engine.state["cleanup_pending"] == []
    live = {d["id"] for d in fake_vertex.endpoints[endpoint_name]["deployedModels"]}
    assert old_id not in live
    assert len(fake_vertex.models) == 2


def test_delete_refuses_to_strand_traffic_of_models_it_does_not_manage(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 100, 0))
    endpoint = fake_vertex.endpoints[endpoint_name]
    endpoint["deployedModels"].append({"id": "9", "displayName": "by-hand", "model": "m"})
    endpoint["trafficSplit"] = {engine.deployed_id("champion"): 60, "9": 40}

    with pytest.raises(VertexDeploymentError, match=r"not managed here \(\['9'\]\)"):
        engine.destroy()
    assert len(endpoint["deployedModels"]) == 3, "nothing was undeployed"


def test_refresh_then_up_repairs_changes_made_by_hand(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 90, 10))
    endpoint = fake_vertex.endpoints[endpoint_name]
    champion, challenger = engine.deployed_id("champion"), engine.deployed_id("challenger")
    # By hand: all traffic to the champion, the challenger undeployed.
    endpoint["trafficSplit"] = {champion: 100}
    endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] == champion]

    refreshed = engine.provider.read(str(engine.id), engine.state)
    assert refreshed.id == engine.id
    engine.state = on_the_wire(refreshed.outs or {})
    assert set(engine.state["deployed"]) == {"champion"}
    assert engine.state["traffic"] == {"champion": 100}
    assert [p["deployed_model_id"] for p in engine.state["cleanup_pending"]] == [None]

    mark = len(fake_vertex.calls)
    assert engine.up(weights(fake_vertex, 90, 10))
    assert since(fake_vertex, mark, "uploadModel", "deployModel") == ["uploadModel", "deployModel"]
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 90, "challenger": 10}
    assert engine.deployed_id("champion") == champion
    assert engine.deployed_id("challenger") != challenger
    assert sorted(fake_vertex.models) == sorted(
        r["model"] for r in engine.state["deployed"].values()
    )


def test_refresh_of_a_deleted_endpoint_drops_the_resource(
    fake_vertex: FakeVertex, engine: Engine, endpoint_name: str
) -> None:
    engine.up(weights(fake_vertex, 100, 0))
    del fake_vertex.endpoints[endpoint_name]
    assert not engine.provider.read(str(engine.id), engine.state).id
