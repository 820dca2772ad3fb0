"""The fake enforces the Vertex AI rules the provider's ordering depends on; if it did not, the
provider tests could pass with a provider the real service would reject. (HTTP 400 with
status FAILED_PRECONDITION reaches the client as BadRequest, as from the real service.)"""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from tests.infra.gcp.fake_vertex import FakeVertex

PARENT = "projects/ml-project/locations/us-central1"
Clients = tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient]


@pytest.fixture
def clients(fake_vertex: FakeVertex) -> Clients:
    options = ClientOptions(api_endpoint=fake_vertex.url)
    credentials = AnonymousCredentials()
    return (
        aiplatform_v1.EndpointServiceClient(
            credentials=credentials, transport="rest", client_options=options
        ),
        aiplatform_v1.ModelServiceClient(
            credentials=credentials, transport="rest", client_options=options
        ),
    )


def deploy(
    clients: Clients,
    endpoint: str,
    split: dict[str, int],
) -> tuple[str, str]:
    endpoints, models = clients
    model = (
        models.upload_model(
            parent=PARENT,
            model=aiplatform_v1.Model(
                display_name="m",
                container_spec=aiplatform_v1.ModelContainerSpec(image_uri="r/i:1"),
            ),
        )
        .result(timeout=5)
        .model
    )
    deployed = endpoints.deploy_model(
        endpoint=endpoint,
        deployed_model=aiplatform_v1.DeployedModel(
            model=model,
            dedicated_resources=aiplatform_v1.DedicatedResources(
                machine_spec=aiplatform_v1.MachineSpec(machine_type="n1-standard-2"),
                min_replica_count=1,
            ),
        ),
        traffic_split=split,
    ).result(timeout=5)
    return model, deployed.deployed_model.id


def test_a_model_with_traffic_cannot_be_undeployed(
    clients: Clients,
    endpoint_name: str,
) -> None:
    _, first = deploy(clients, endpoint_name, {"0": 100})
    deploy(clients, endpoint_name, {"0": 0, first: 100})
    with pytest.raises(exceptions.BadRequest, match="has 100% of the traffic"):
        clients[0].undeploy_model(endpoint=endpoint_name, deployed_model_id=first)


def test_traffic_must_add_up_and_name_deployed_models(
    clients: Clients,
    endpoint_name: str,
) -> None:
    _, first = deploy(clients, endpoint_name, {"0": 100})
    mask = field_mask_pb2.FieldMask(paths=["traffic_split"])
    for split, says in (({first: 90}, "add up to 100"), ({"777": 100}, "unknown DeployedModel")):
        with pytest.raises(exceptions.BadRequest, match=says):
            clients[0].update_endpoint(
                endpoint=aiplatform_v1.Endpoint(name=endpoint_name, traffic_split=split),
                update_mask=mask,
            )


def test_a_deployed_model_cannot_be_deleted_and_unknown_names_are_404(
    clients: Clients,
    endpoint_name: str,
) -> None:
    model, _ = deploy(clients, endpoint_name, {"0": 100})
    with pytest.raises(exceptions.BadRequest, match="is deployed to"):
        clients[1].delete_model(name=model)
    with pytest.raises(exceptions.NotFound):
        clients[1].get_model(name=PARENT + "/models/999")
    with pytest.raises(exceptions.NotFound):
        clients[0].get_endpoint(name=PARENT + "/endpoints/999")


def upload(models: aiplatform_v1.ModelServiceClient, labels: dict[str, str] | None = None) -> str:
    request = aiplatform_v1.Model(
        display_name="m",
        labels=labels or {},
        container_spec=aiplatform_v1.ModelContainerSpec(image_uri="r/i:1"),
    )
    return str(models.upload_model(parent=PARENT, model=request).result(timeout=5).model)


def deployed_model(model: str, deployed_id: str = "") -> aiplatform_v1.DeployedModel:
    return aiplatform_v1.DeployedModel(
        id=deployed_id,
        model=model,
        dedicated_resources=aiplatform_v1.DedicatedResources(
            machine_spec=aiplatform_v1.MachineSpec(machine_type="n1-standard-2"),
            min_replica_count=1,
        ),
    )


def test_a_held_deploy_keeps_running_after_the_client_gives_up(
    clients: Clients,
    fake_vertex: FakeVertex,
    endpoint_name: str,
) -> None:
    """A client-side timeout does not stop a Vertex operation (the SDK waits forever:
    python-aiplatform ``aiplatform/models.py`` ``operation_future.result(timeout=None)``); the
    deployment appears when the operation completes. Its ID is taken while it runs."""
    endpoints, models = clients
    model = upload(models)
    held = fake_vertex.hold_next("deployModel")
    operation = endpoints.deploy_model(
        endpoint=endpoint_name,
        deployed_model=deployed_model(model, "4711"),
        traffic_split={"0": 100},
    )
    with pytest.raises(TimeoutError):
        operation.result(timeout=0.3)
    assert endpoints.get_endpoint(name=endpoint_name).deployed_models == []
    running = endpoints.list_operations(
        request=operations_pb2.ListOperationsRequest(name=endpoint_name)
    )
    assert [o.name for o in running.operations if not o.done] == [held.name]
    with pytest.raises(exceptions.Conflict, match="already exists"):
        endpoints.deploy_model(endpoint=endpoint_name, deployed_model=deployed_model(model, "4711"))
    with pytest.raises(exceptions.BadRequest, match="is deployed to"):
        models.delete_model(name=model)

    held.finish()

    assert operation.result(timeout=5).deployed_model.id == "4711"
    live = endpoints.get_endpoint(name=endpoint_name)
    assert [d.id for d in live.deployed_models] == ["4711"]
    assert dict(live.traffic_split) == {"4711": 100}


def test_a_held_deploy_can_fail_and_leaves_nothing(
    clients: Clients,
    fake_vertex: FakeVertex,
    endpoint_name: str,
) -> None:
    endpoints, models = clients
    held = fake_vertex.hold_next("deployModel")
    operation = endpoints.deploy_model(
        endpoint=endpoint_name,
        deployed_model=deployed_model(upload(models)),
        traffic_split={"0": 100},
    )
    held.fail("Model server never became ready")
    with pytest.raises(exceptions.GoogleAPICallError, match="never became ready"):
        operation.result(timeout=5)
    assert endpoints.get_endpoint(name=endpoint_name).deployed_models == []


def test_a_lost_response_still_deploys(
    clients: Clients,
    fake_vertex: FakeVertex,
    endpoint_name: str,
) -> None:
    """The caller sees 503, the service has deployed: a model deployed but not recorded."""
    endpoints, models = clients
    fake_vertex.lose_next_response("deployModel")
    with pytest.raises(exceptions.ServiceUnavailable):
        endpoints.deploy_model(
            endpoint=endpoint_name,
            deployed_model=deployed_model(upload(models), "77"),
            traffic_split={"0": 100},
        )
    assert [d.id for d in endpoints.get_endpoint(name=endpoint_name).deployed_models] == ["77"]


def test_a_private_endpoint_takes_one_deployed_model(
    clients: Clients,
    fake_vertex: FakeVertex,
) -> None:
    """https://cloud.google.com/vertex-ai/docs/predictions/using-private-endpoints: "Only support
    one model per private endpoint"."""
    endpoints, models = clients
    private = fake_vertex.add_endpoint(
        "ml-project", "us-central1", "p", "77", network="projects/1/global/networks/n"
    )
    endpoints.deploy_model(
        endpoint=private, deployed_model=deployed_model(upload(models)), traffic_split={"0": 100}
    ).result(timeout=5)
    with pytest.raises(exceptions.BadRequest, match="only one model"):
        endpoints.deploy_model(
            endpoint=private, deployed_model=deployed_model(upload(models)), traffic_split={"0": 0}
        )


@pytest.mark.parametrize(
    ("endpoint_id", "ok"),
    [
        ("123456789", True),
        ("1234567890", False),  # numeric IDs: up to 9 digits
        ("0123", False),  # no leading zero
        ("churn-prod", True),
        ("c" * 63, True),
        ("c" * 64, False),
        ("churn-", False),  # must end with a letter or digit
        ("Churn", False),
    ],
)
def test_endpoint_ids_follow_the_api_rules(
    clients: Clients,
    endpoint_id: str,
    ok: bool,
) -> None:
    """``CreateEndpointRequest.endpoint_id`` (python-aiplatform
    ``aiplatform_v1/types/endpoint_service.py``; REST reference
    ``projects.locations.endpoints/create``): a letter then up to 63 characters ``[a-z0-9-]``
    ending in a letter or number, or up to 9 digits without a leading zero."""
    endpoints, _ = clients
    create = endpoints.create_endpoint
    if ok:
        created = create(
            parent=PARENT,
            endpoint=aiplatform_v1.Endpoint(display_name="e"),
            endpoint_id=endpoint_id,
        ).result(timeout=5)
        assert created.name == f"{PARENT}/endpoints/{endpoint_id}"
    else:
        with pytest.raises(exceptions.BadRequest, match="endpoint_id"):
            create(
                parent=PARENT,
                endpoint=aiplatform_v1.Endpoint(display_name="e"),
                endpoint_id=endpoint_id,
            )


def test_models_are_found_by_label_and_relabelled_in_place(
    clients: Clients,
) -> None:
    _, models = clients
    ours = upload(models, {"ml-endpoints-owner": "abc"})
    upload(models, {"ml-endpoints-owner": "other"})
    found = models.list_models(
        request=aiplatform_v1.ListModelsRequest(
            parent=PARENT, filter='labels.ml-endpoints-owner="abc"'
        )
    )
    assert [m.name for m in found] == [ours]
    models.update_model(
        model=aiplatform_v1.Model(name=ours, labels={"ml-endpoints-owner": "abc", "team": "ml"}),
        update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
    )
    assert dict(models.get_model(name=ours).labels) == {"ml-endpoints-owner": "abc", "team": "ml"}


def test_console_changes_show_through_the_api(
    clients: Clients,
    fake_vertex: FakeVertex,
    endpoint_name: str,
) -> None:
    endpoints, models = clients
    model, first = deploy(clients, endpoint_name, {"0": 100})
    endpoints.get_endpoint(name=endpoint_name)
    by_hand = fake_vertex.console_deploy(endpoint_name, upload(models), "by-hand")
    fake_vertex.console_split(endpoint_name, {"m": 50, "by-hand": 50})
    fake_vertex.console_scale(endpoint_name, "m", 2, 4)
    live = endpoints.get_endpoint(name=endpoint_name)
    assert dict(live.traffic_split) == {first: 50, by_hand: 50}
    resources = next(d for d in live.deployed_models if d.id == first).dedicated_resources
    assert (resources.min_replica_count, resources.max_replica_count) == (2, 4)
    fake_vertex.console_undeploy(endpoint_name, "by-hand")
    assert [d.id for d in endpoints.get_endpoint(name=endpoint_name).deployed_models] == [first]
    assert model in fake_vertex.models
