"""Ordering on a new project and cluster (issue 14 item 2), read from the offline plans of the
repository's stacks: what the engine would create first is what a resource depends on.

The plans record each registration's ``dependencies`` as the engine receives them (explicit
``depends_on`` and the resources whose outputs an input uses), so a missing edge here is a race
in a real ``pulumi up``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from infra.gcp import apis
from infra.gcp.vertex import ACT_AS_ROLE
from infra.stack.mocks import DEPLOYER
from infra.stack.plan import Plan, PlannedResource
from tests.infra.offline_plans import stack_plans

VERTEX_DEPLOYMENT = "pulumi-python:dynamic/ml-endpoints/gcp:VertexDeployment"

NEEDS: dict[str, str] = {
    "gcp:container/cluster:Cluster": apis.CONTAINER,
    "gcp:container/nodePool:NodePool": apis.CONTAINER,
    "gcp:serviceaccount/account:Account": apis.IAM,
    "gcp:artifactregistry/repository:Repository": apis.ARTIFACT_REGISTRY,
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": apis.ARTIFACT_REGISTRY,
    "gcp:vertex/aiEndpoint:AiEndpoint": apis.AIPLATFORM,
    VERTEX_DEPLOYMENT: apis.AIPLATFORM,
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": apis.CLOUD_KMS,
}
"""The API each type calls: GKE (container.googleapis.com), IAM service accounts
(iam.googleapis.com), Artifact Registry, Vertex AI (aiplatform.googleapis.com, also what the
Vertex provider's client calls) and Cloud KMS key policies (each API's service name from its
REST reference's service endpoint). A project that never used one answers 403 with reason
``SERVICE_DISABLED`` (googleapis ``google/api/error_reason.proto``: "The request is calling a
disabled service for a consumer") until it is enabled (Service Usage documentation, "Enabling
and disabling services")."""


def _by_urn(plan: Plan) -> dict[str, PlannedResource]:
    return {r.urn: r for r in plan.resources}


def _closure(plan: Plan, resource: PlannedResource) -> set[str]:
    """Every URN ``resource`` waits for, directly or through what it waits for."""
    by_urn = _by_urn(plan)
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        if urn in by_urn:
            todo.extend(by_urn[urn].dependencies)
    return seen


def _of_type(plan: Plan, type_token: str) -> list[PlannedResource]:
    return [r for r in plan.resources if r.type == type_token]


def _one(resources: Iterable[PlannedResource]) -> PlannedResource:
    found = list(resources)
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def _services(plan: Plan) -> dict[tuple[str, str], str]:
    """(project, API) -> URN of the ``gcp.projects.Service`` enabling it."""
    return {
        (r.inputs["project"], r.inputs["service"]): r.urn
        for r in _of_type(plan, "gcp:projects/service:Service")
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_everything_that_calls_a_google_api_waits_for_it_to_be_enabled(stack: str) -> None:
    plan = stack_plans()[stack]
    services = _services(plan)
    checked = 0
    for resource in plan.resources:
        api = NEEDS.get(resource.type)
        if api is None:
            continue
        project = resource.inputs.get("project")
        candidates = (
            {services.get((project, api))} - {None}
            if project is not None
            else {urn for (_, name), urn in services.items() if name == api}
        )
        assert candidates, f"{stack}: nothing enables {api} for {resource.name}"
        assert candidates & _closure(plan, resource), (
            f"{stack}: {resource.type} {resource.name} does not wait for {api}"
        )
        checked += 1
    assert checked >= 5
    for service in _of_type(plan, "gcp:projects/service:Service"):
        # Destroying the stack must not switch an API off for the rest of the project.
        assert service.inputs["disableOnDestroy"] is False


def test_staging_enables_each_api_once_per_project() -> None:
    """GKE and Vertex share the staging project: one Service per API, not one per component."""
    services = _of_type(stack_plans()["staging"], "gcp:projects/service:Service")
    keys = [(s.inputs["project"], s.inputs["service"]) for s in services]
    assert len(keys) == len(set(keys))
    assert {api for project, api in keys if project == "acme-ml-staging"} >= {
        apis.AIPLATFORM,
        apis.ARTIFACT_REGISTRY,
        apis.CONTAINER,
        apis.IAM,
    }


def test_workload_identity_binding_waits_for_the_cluster() -> None:
    """The pool ``PROJECT.svc.id.goog`` exists once a workload-identity cluster does: a binding
    to ``serviceAccount:PROJECT.svc.id.goog[NS/KSA]`` made before fails with "Identity Pool does
    not exist" (GKE, "Use Workload Identity Federation for GKE"). The member comes from the
    cluster's ``workloadIdentityConfig.workloadPool`` output, so the binding depends on it."""
    plan = stack_plans()["staging"]
    cluster = _one(_of_type(plan, "gcp:container/cluster:Cluster"))
    binding = _one(
        r
        for r in _of_type(plan, "gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    )
    assert cluster.urn in binding.dependencies
    assert (
        binding.inputs["member"]
        == "serviceAccount:acme-ml-staging.svc.id.goog[ml-staging/model-server]"
    )


@pytest.mark.parametrize(
    ("stack", "pool_type", "pool_name"),
    [
        ("staging", "gcp:container/nodePool:NodePool", "cluster-cpu"),
        ("prod", "aws:eks/nodeGroup:NodeGroup", "cluster-gpu"),
    ],
    ids=["gke-cpu-pods", "eks-gpu-pods"],
)
def test_deployments_wait_for_the_pool_that_runs_their_pods(
    stack: str, pool_type: str, pool_name: str
) -> None:
    """Pods created before their pool exists stay Pending and the rollout's wait runs out on a
    new cluster; prod's pods ask for a GPU (kubernetes.gpu), so they wait for the GPU pool."""
    plan = stack_plans()[stack]
    pool = _one(r for r in _of_type(plan, pool_type) if r.name == pool_name)
    deployments = _of_type(plan, "kubernetes:apps/v1:Deployment")
    assert deployments
    for deployment in deployments:
        assert pool.urn in deployment.dependencies, deployment.name


def test_the_registry_service_agent_may_use_the_cmek_key_before_the_repository_exists() -> None:
    """Artifact Registry encrypts a CMEK repository with its project's service agent
    (``service-PROJECT_NUMBER@gcp-sa-artifactregistry.iam.gserviceaccount.com``), which must hold
    ``roles/cloudkms.cryptoKeyEncrypterDecrypter`` on the key when the repository is created
    (Artifact Registry, "Enable customer-managed encryption keys"). The agent is created by
    ``generateServiceIdentity`` (terraform-provider-google-beta
    ``resource_project_service_identity.go``); a new project has none before."""
    plan = stack_plans()["prod"]
    repository = _one(_of_type(plan, "gcp:artifactregistry/repository:Repository"))
    agent = _one(
        r
        for r in _of_type(plan, "gcp:projects/serviceIdentity:ServiceIdentity")
        if r.inputs["service"] == apis.ARTIFACT_REGISTRY
    )
    grant = _one(_of_type(plan, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"))
    assert agent.inputs == {"project": "acme-ml-prod", "service": apis.ARTIFACT_REGISTRY}
    assert grant.inputs["cryptoKeyId"] == repository.inputs["kmsKeyName"]
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant.inputs["member"].endswith("@gcp-sa-artifactregistry.iam.gserviceaccount.com")
    assert agent.urn in grant.dependencies
    assert grant.urn in repository.dependencies
    # Without a key there is nothing to grant: staging declares neither.
    staging = stack_plans()["staging"]
    assert not _of_type(staging, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_deploying_identity_may_act_as_the_vertex_service_account(stack: str) -> None:
    """DeployModel with a ``serviceAccount`` needs ``iam.serviceAccounts.actAs`` on it for the
    caller (Vertex AI, "Use a custom service account"); creating the account grants its creator
    nothing. The deployment waits for the grant."""
    plan = stack_plans()[stack]
    account = _one(
        r for r in _of_type(plan, "gcp:serviceaccount/account:Account") if r.name == "vertex-sa"
    )
    grant = _one(
        r
        for r in _of_type(plan, "gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == ACT_AS_ROLE
    )
    assert grant.inputs["member"] == f"serviceAccount:{DEPLOYER}"
    assert account.urn in grant.dependencies
    deployment = _one(_of_type(plan, VERTEX_DEPLOYMENT))
    assert grant.urn in deployment.dependencies
