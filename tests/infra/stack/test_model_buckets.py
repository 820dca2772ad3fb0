"""Model buckets in another project (issue 14 item 5): whoever loads the model gets read access
on the bucket that holds it, and a stack that cannot grant it is refused naming both."""

from __future__ import annotations

from typing import Any

import pytest

from infra.stack.config import load_stack
from infra.stack.files import StackError, read_stack_file, stack_file
from infra.stack.mocks import GCP_PROJECT_NUMBER
from infra.stack.plan import Plan, PlannedResource
from tests.infra.offline_plans import STACKS_DIR, options_plan, stack_plans

BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
VIEWER = "roles/storage.objectViewer"
VERTEX_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com"
)


def _grants(plan: Plan, member: str) -> list[PlannedResource]:
    return [
        r
        for r in plan.resources
        if r.type == BUCKET_GRANT and r.inputs["member"] == member and r.inputs["role"] == VIEWER
    ]


def test_gke_pods_read_the_model_bucket_wherever_it_lives() -> None:
    """Staging's pods load gs://acme-ml-models/... (``artifact_store: gcs``) as the cluster's
    serving account; its project-level ``roles/storage.objectViewer`` covers buckets of the
    cluster's project only (IAM: a role granted on a project applies to that project's
    resources), so the grant is on the bucket itself, and the Deployments wait for it."""
    plan = stack_plans()["staging"]
    member = "serviceAccount:cluster-serving@acme-ml-staging.iam.gserviceaccount.com"
    (grant,) = _grants(plan, member)
    assert grant.inputs["bucket"] == "acme-ml-models"
    deployments = [r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment"]
    assert deployments
    for deployment in deployments:
        assert grant.urn in deployment.dependencies


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_vertex_service_agent_reads_the_model_bucket(stack: str) -> None:
    """Model upload reads ``artifactUri`` as the project's Vertex AI service agent
    (``service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com``, Vertex AI "Service
    agents"), not as the models' account: both get bucket-level read. The agent is created
    with ``gcp.projects.ServiceIdentity`` (a new project has none until asked)."""
    plan = stack_plans()[stack]
    agent = next(
        r
        for r in plan.resources
        if r.type == "gcp:projects/serviceIdentity:ServiceIdentity"
        and r.inputs["service"] == "aiplatform.googleapis.com"
    )
    (grant,) = _grants(plan, VERTEX_AGENT)
    assert grant.inputs["bucket"] == "acme-ml-models"
    assert agent.urn in grant.dependencies
    deployment = next(r for r in plan.resources if r.type.endswith(":VertexDeployment"))
    assert grant.urn in deployment.dependencies
    models_account = next(
        r
        for r in plan.resources
        if r.type == BUCKET_GRANT and r.name == "vertex-read-acme-ml-models"
    )
    assert models_account.urn in deployment.dependencies


def _staging(**cluster: Any) -> dict[str, Any]:
    config = read_stack_file(stack_file("staging", STACKS_DIR))
    config["ml-endpoints:cluster"] = cluster
    return config


@pytest.mark.parametrize(
    ("cluster", "why"),
    [
        ({"type": "existing", "context": "staging"}, "names no Google service account"),
        ({"type": "render", "directory": "out"}, "names no Google service account"),
    ],
    ids=["existing", "render"],
)
def test_a_stack_that_cannot_grant_read_access_names_bucket_and_identity(
    cluster: dict[str, Any], why: str
) -> None:
    with pytest.raises(StackError) as caught:
        load_stack(_staging(**cluster), "stacks/Pulumi.staging.yaml")
    message = str(caught.value)
    assert message.startswith(
        "stacks/Pulumi.staging.yaml: ml-endpoints:kubernetes.artifact_store: "
    )
    assert "gs://acme-ml-models" in message
    assert "Kubernetes service account ml-staging/model-server" in message
    assert why in message
    assert "iam.gke.io/gcp-service-account" in message


def test_eks_pods_loading_gcs_models_are_refused_naming_bucket_and_identity() -> None:
    config = read_stack_file(stack_file("prod", STACKS_DIR))
    config["ml-endpoints:kubernetes"]["artifact_store"] = "gcs"
    with pytest.raises(StackError) as caught:
        load_stack(config, "stacks/Pulumi.prod.yaml")
    message = str(caught.value)
    assert "ml-endpoints:kubernetes.artifact_store" in message
    assert "gs://acme-ml-models" in message
    assert "ml-prod/model-server" in message
    assert "IAM role" in message


def test_an_annotated_existing_cluster_gets_the_grant_for_its_account() -> None:
    """An existing (or rendered) cluster whose annotations name the pods' Google service
    account: the stack grants that account read access on the bucket."""
    plan = options_plan()
    (grant,) = _grants(plan, "serviceAccount:reranker@options-project.iam.gserviceaccount.com")
    assert grant.inputs["bucket"] == "options-models"
    deployment = next(r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment")
    assert grant.urn in deployment.dependencies


def test_s3_models_need_no_google_identity() -> None:
    """dev: an existing cluster without annotations loading s3:// models is fine."""
    stack = load_stack(read_stack_file(stack_file("dev", STACKS_DIR)), "stacks/Pulumi.dev.yaml")
    assert stack.kubernetes is not None
    assert stack.kubernetes.artifact_store == "s3"
    assert not [r for r in stack_plans()["dev"].resources if r.type == BUCKET_GRANT]
