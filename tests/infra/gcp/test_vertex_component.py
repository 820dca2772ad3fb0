"""The VertexEndpoint component graph and properties, under Pulumi's mocks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import dill  # type: ignore[import-untyped]
import pulumi
import pytest

from infra.gcp.config import vertex_args_from_config
from infra.gcp.vertex import VertexEndpoint, member_of
from infra.gcp.vertex_provider import VertexDeploymentProvider
from infra.stack.mocks import DEPLOYER, GCP_PROJECT_NUMBER, RecordingMocks
from infra.validation import ConfigError
from tests.infra.gcp.conftest import vertex_config

COMPONENT = "ml-endpoints:gcp:VertexEndpoint"
DEPLOYMENT = "pulumi-python:dynamic/ml-endpoints/gcp:VertexDeployment"
PROJECT_GRANT = "gcp:projects/iAMMember:IAMMember"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
ACCOUNT_GRANT = "gcp:serviceaccount/iAMMember:IAMMember"
SERVICE = "gcp:projects/service:Service"
OPEN_ID = "gcp:organizations/getClientOpenIdUserInfo:getClientOpenIdUserInfo"


def run(program: Callable[[], Any]) -> None:
    """Run ``program`` as a Pulumi program and wait for every registration."""
    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]


def declare(**overrides: Any) -> tuple[VertexEndpoint, list[tuple[str, str, str | None]]]:
    """Declare the component from its config; returns it and (type, name, parent type) of
    every child, seen through a transformation on the component."""
    args = vertex_args_from_config(vertex_config(**overrides))
    children: list[tuple[str, str, str | None]] = []

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        if args.type_ != COMPONENT:
            parent = args.opts.parent if args.opts else None
            children.append((args.type_, args.name, getattr(parent, "_type", None)))

    made: list[VertexEndpoint] = []

    def program() -> Any:
        made.append(
            VertexEndpoint(
                "churn",
                args,
                pulumi.ResourceOptions(transformations=[record]),
            )
        )
        return made[0].endpoint_name

    run(program)
    return made[0], children


def test_declares_account_grants_endpoint_and_deployment(pulumi_mocks: RecordingMocks) -> None:
    declare()

    types = sorted(r.type for r in pulumi_mocks.resources)
    assert types == sorted(
        [
            COMPONENT,
            SERVICE,
            SERVICE,
            "gcp:serviceaccount/account:Account",
            PROJECT_GRANT,
            PROJECT_GRANT,
            BUCKET_GRANT,
            BUCKET_GRANT,
            "gcp:projects/serviceIdentity:ServiceIdentity",
            ACCOUNT_GRANT,
            "gcp:vertex/aiEndpoint:AiEndpoint",
            DEPLOYMENT,
        ]
    )
    enabled = {r.inputs["service"] for r in pulumi_mocks.of_type(SERVICE)}
    assert enabled == {"aiplatform.googleapis.com", "iam.googleapis.com"}


def test_children_are_parented_to_the_component_deployment_last(
    pulumi_mocks: RecordingMocks,
) -> None:
    _, children = declare()
    assert len(children) == 11
    assert {parent for _, _, parent in children} == {COMPONENT}
    assert [t for t, _, _ in children][-1] == DEPLOYMENT


def test_endpoint_properties(pulumi_mocks: RecordingMocks) -> None:
    one_variant = vertex_config()["variants"][:1]
    declare(
        network="projects/123456/global/networks/ml-vpc",
        variants=one_variant,
        traffic={"champion": 100},
        request_logging={"bigquery_table": "bq://ml-project.logs.churn", "sampling_rate": 0.25},
    )
    endpoint = pulumi_mocks.one("gcp:vertex/aiEndpoint:AiEndpoint").inputs
    assert endpoint["name"] == "4242"
    assert endpoint["location"] == endpoint["region"] == "us-central1"
    assert endpoint["displayName"] == "churn"
    assert endpoint["labels"] == {"team": "ml"}
    assert endpoint["network"] == "projects/123456/global/networks/ml-vpc"
    assert endpoint["predictRequestResponseLoggingConfig"] == {
        "enabled": True,
        "samplingRate": 0.25,
        "bigqueryDestination": {"outputUri": "bq://ml-project.logs.churn"},
    }
    assert "trafficSplit" not in endpoint, "the deployment owns the split"


def test_service_account_has_only_the_roles_it_needs(pulumi_mocks: RecordingMocks) -> None:
    declare()
    account = pulumi_mocks.one("gcp:serviceaccount/account:Account").inputs
    assert account["accountId"] == "test-churn-serving"
    email = "test-churn-serving@ml-project.iam.gserviceaccount.com"
    grants = {
        (r.inputs.get("project") or r.inputs.get("bucket"), r.inputs["role"], r.inputs["member"])
        for r in pulumi_mocks.resources
        if r.type in (PROJECT_GRANT, BUCKET_GRANT)
    }
    agent = f"service-{GCP_PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com"
    assert grants == {
        ("ml-project", "roles/logging.logWriter", f"serviceAccount:{email}"),
        ("ml-project", "roles/monitoring.metricWriter", f"serviceAccount:{email}"),
        ("ml-models", "roles/storage.objectViewer", f"serviceAccount:{email}"),
        # Model upload reads the artifacts as the Vertex AI service agent (issue 14 item 5).
        ("ml-models", "roles/storage.objectViewer", f"serviceAccount:{agent}"),
    }


def test_deployment_inputs_carry_variants_traffic_by_name_and_no_credentials(
    pulumi_mocks: RecordingMocks,
) -> None:
    declare(traffic={"champion": 90, "challenger": 10})
    inputs = pulumi_mocks.one(DEPLOYMENT).inputs

    assert inputs["endpoint"] == "projects/ml-project/locations/us-central1/endpoints/4242"
    assert inputs["api_endpoint"] == "us-central1-aiplatform.googleapis.com"
    assert inputs["traffic"] == {"champion": 90, "challenger": 10}
    champion, challenger = inputs["variants"]
    assert champion["env"] == {
        "MODEL_NAME": "churn",
        "MODEL_VERSION": "1",
        "ML_ENDPOINTS_VARIANT": "champion",
    }
    assert challenger["accelerator_type"] == "NVIDIA_TESLA_T4"
    assert challenger["service_account"] == "test-churn-serving@ml-project.iam.gserviceaccount.com"
    text = json.dumps({k: v for k, v in inputs.items() if k != "__provider"}).lower()
    for word in ("token", "secret", "password", "private_key", "credential"):
        assert word not in text


def test_the_provider_travels_with_the_program(pulumi_mocks: RecordingMocks) -> None:
    declare()
    serialized = pulumi_mocks.one(DEPLOYMENT).inputs["__provider"]
    provider = dill.loads(base64.b64decode(serialized))
    assert isinstance(provider, VertexDeploymentProvider)
    assert b"credential" not in base64.b64decode(serialized).lower()


def test_outputs_name_deployed_models_by_variant(pulumi_mocks: RecordingMocks) -> None:
    component, _ = declare()
    seen: dict[str, Any] = {}
    run(
        lambda: pulumi.Output.all(
            component.endpoint_name, component.deployed_model_ids, component.service_account_email
        ).apply(lambda values: seen.update(zip(("name", "ids", "email"), values, strict=True)))
    )
    assert seen["name"] == "projects/ml-project/locations/us-central1/endpoints/4242"
    assert seen["ids"] == {}, "known only after the provider ran"
    assert seen["email"].endswith("@ml-project.iam.gserviceaccount.com")


def test_invalid_config_declares_nothing(pulumi_mocks: RecordingMocks) -> None:
    config = vertex_config()
    config["variants"][1]["machine_type"] = "g2-standard-8"

    with pytest.raises(ConfigError) as error:
        vertex_args_from_config(config)

    assert error.value.key == "vertex.variants[1].accelerator"
    assert "g2-standard-8 comes with {type: NVIDIA_L4, count: 1}" in str(error.value)
    assert pulumi_mocks.resources == []


def test_the_deploying_identity_may_act_as_the_models_account(
    pulumi_mocks: RecordingMocks,
) -> None:
    """DeployModel with ``serviceAccount`` needs ``iam.serviceAccounts.actAs`` on that account
    for the caller (Vertex AI, "Use a custom service account"). Left out, the deployer is whom
    the credentials authenticate (``google_client_openid_userinfo``)."""
    declare()
    account = pulumi_mocks.one("gcp:serviceaccount/account:Account")
    grant = pulumi_mocks.one(ACCOUNT_GRANT)
    assert grant.inputs["role"] == "roles/iam.serviceAccountUser"
    assert grant.inputs["member"] == f"serviceAccount:{DEPLOYER}"
    assert grant.inputs["serviceAccountId"].endswith(
        account.inputs["accountId"] + "@ml-project.iam.gserviceaccount.com"
    )
    assert grant.urn in pulumi_mocks.one(DEPLOYMENT).dependencies
    assert [token for token, _ in pulumi_mocks.calls] == [OPEN_ID]


def test_a_configured_deployer_is_granted_without_asking_the_credentials(
    pulumi_mocks: RecordingMocks,
) -> None:
    declare(deployer="user:release-manager@acme.example")
    assert pulumi_mocks.one(ACCOUNT_GRANT).inputs["member"] == "user:release-manager@acme.example"
    assert OPEN_ID not in [token for token, _ in pulumi_mocks.calls]


@pytest.mark.parametrize(
    ("email", "member"),
    [
        ("ci@acme-ml.iam.gserviceaccount.com", "serviceAccount:ci@acme-ml.iam.gserviceaccount.com"),
        ("someone@acme.example", "user:someone@acme.example"),
    ],
)
def test_the_member_of_an_authenticated_email(email: str, member: str) -> None:
    """IAM principal identifiers ("Principal identifiers", IAM documentation): a service
    account is ``serviceAccount:NAME@PROJECT.iam.gserviceaccount.com``, a Google account
    ``user:EMAIL``. Credentials authenticate one of these two (a group never does)."""
    assert member_of(email) == member
