"""The fake enforces the Vertex AI rules the provider's ordering depends on; if it did not, the
provider tests could pass with a provider the real service would reject. (HTTP 400 with
status FAILED_PRECONDITION reaches the client as BadRequest, as from the real service.)"""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1
from google.protobuf import field_mask_pb2

from tests.infra.gcp.fake_vertex import FakeVertex

PARENT = "projects/ml-project/locations/us-central1"


@pytest.fixture
def clients(
    fake_vertex: FakeVertex,
) -> tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient]:
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
    clients: tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient],
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
    clients: tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient],
    endpoint_name: str,
) -> None:
    _, first = deploy(clients, endpoint_name, {"0": 100})
    deploy(clients, endpoint_name, {"0": 0, first: 100})
    with pytest.raises(exceptions.BadRequest, match="has 100% of the traffic"):
        clients[0].undeploy_model(endpoint=endpoint_name, deployed_model_id=first)


def test_traffic_must_add_up_and_name_deployed_models(
    clients: tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient],
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
    clients: tuple[aiplatform_v1.EndpointServiceClient, aiplatform_v1.ModelServiceClient],
    endpoint_name: str,
) -> None:
    model, _ = deploy(clients, endpoint_name, {"0": 100})
    with pytest.raises(exceptions.BadRequest, match="is deployed to"):
        clients[1].delete_model(name=model)
    with pytest.raises(exceptions.NotFound):
        clients[1].get_model(name=PARENT + "/models/999")
    with pytest.raises(exceptions.NotFound):
        clients[0].get_endpoint(name=PARENT + "/endpoints/999")
