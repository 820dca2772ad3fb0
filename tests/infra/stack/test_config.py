"""The typed stack schema: the repository's stacks, composition into component args, and errors
that name the stack file, the key path and what is allowed, where they occur in the file."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.aws.config import SageMakerEndpointArgs
from infra.aws.verify import sample_body
from infra.clusters.eks import EksClusterArgs
from infra.clusters.existing import ExistingClusterArgs
from infra.gcp.config import VertexEndpointArgs
from infra.gcp.verify import sample_instances
from infra.k8s.config import ModelDeploymentArgs
from infra.secret_values import Secret
from infra.stack.components import compose
from infra.stack.config import StackConfig, load_stack, load_stack_file
from infra.stack.files import (
    SECRET_PLACEHOLDER,
    StackError,
    dump_document,
    load_document,
    read_stack_file,
    stack_file,
)
from tests.infra.offline_plans import STACKS, STACKS_DIR

SOURCE = "stacks/Pulumi.prod.yaml"
DIGEST = "sha256:" + "ab12" * 16


@pytest.fixture(scope="module")
def prod_config() -> dict[str, Any]:
    return read_stack_file(stack_file("prod", STACKS_DIR))


def edited(config: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    result = copy.deepcopy(config)
    edit(result)
    return result


def error_of(config: dict[str, Any]) -> str:
    with pytest.raises(StackError) as caught:
        load_stack(config, SOURCE)
    return str(caught.value)


@pytest.mark.parametrize("stack", STACKS)
def test_repository_stacks_are_valid(stack: str) -> None:
    config = load_stack_file(stack, STACKS_DIR)
    assert [v.name for v in config.release.variants] == ["champion", "challenger"]
    assert sum(config.release.weights().values()) == 100


def test_prod_is_strict_and_dev_is_small() -> None:
    prod = load_stack_file("prod", STACKS_DIR)
    dev = load_stack_file("dev", STACKS_DIR)
    assert prod.policy.production
    assert not dev.policy.production
    assert prod.release.image.digest is not None
    prod_components, dev_components = compose(prod), compose(dev)
    assert isinstance(prod_components.cluster, EksClusterArgs)
    assert prod_components.cluster.gpu_nodes is not None
    assert isinstance(dev_components.cluster, ExistingClusterArgs)
    assert dev_components.vertex is None  # switched off in dev
    prod_sagemaker, dev_sagemaker = prod_components.sagemaker, dev_components.sagemaker
    assert prod_sagemaker is not None
    assert dev_sagemaker is not None
    assert all(v.instance_count >= 2 for v in prod_sagemaker.variants)
    assert all(v.instance_count == 1 for v in dev_sagemaker.variants)


def test_release_composes_into_every_target() -> None:
    components = compose(load_stack_file("prod", STACKS_DIR))
    sagemaker, vertex, kubernetes = components.sagemaker, components.vertex, components.kubernetes
    assert isinstance(sagemaker, SageMakerEndpointArgs)
    assert isinstance(vertex, VertexEndpointArgs)
    assert isinstance(kubernetes, ModelDeploymentArgs)
    pinned = "@sha256:3b8e1f0a9c7d5e2b4a6f8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f"
    assert all(v.model.image and v.model.image.endswith(pinned) for v in sagemaker.variants)
    assert sagemaker.normalised_weights() == {"champion": 1.0, "challenger": 0.0}
    assert all(v.image.endswith(pinned) for v in vertex.variants)
    assert vertex.split == {"champion": 100, "challenger": 0}
    assert [v.model_uri for v in kubernetes.variants] == [
        "s3://acme-ml-models/reranker/14/model.tar.gz",
        "s3://acme-ml-models/reranker/15/model.tar.gz",
    ]
    assert kubernetes.image_for(kubernetes.variants[0]).endswith(pinned)


def test_the_cluster_target_comes_from_the_stack(prod_config: dict[str, Any]) -> None:
    config = edited(
        prod_config,
        lambda c: c.update({"ml-endpoints:cluster": {"type": "existing", "context": "staging"}}),
    )
    assert compose(load_stack(config, SOURCE)).cluster == ExistingClusterArgs(context="staging")


def test_a_disabled_target_declares_nothing(prod_config: dict[str, Any]) -> None:
    config = edited(prod_config, lambda c: c["ml-endpoints:vertex"].update(enabled=False))
    components = compose(load_stack(config, SOURCE))
    assert components.vertex is None
    assert components.artifact_registry is None
    assert components.sagemaker is not None


@pytest.mark.parametrize(
    ("production", "setting", "recreates"),
    [(True, None, False), (True, True, True), (False, None, True), (False, False, False)],
)
def test_a_failed_endpoint_is_recreated_only_where_the_stack_allows_it(
    prod_config: dict[str, Any], production: bool, setting: bool | None, recreates: bool
) -> None:
    """prod keeps a ``Failed`` endpoint for a person to read its FailureReason (issue 13 item
    8); ``ml-endpoints:sagemaker.recreate_failed_endpoint`` decides it either way."""

    def edit(config: dict[str, Any]) -> None:
        config["ml-endpoints:policy"]["production"] = production
        if setting is not None:
            config["ml-endpoints:sagemaker"]["recreate_failed_endpoint"] = setting

    sagemaker = compose(load_stack(edited(prod_config, edit), SOURCE)).sagemaker
    assert sagemaker is not None
    assert (sagemaker.protect, sagemaker.recreates_failed_endpoint) == (production, recreates)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["ml-endpoints:release"]["image"].pop("digest"),
            "stacks/Pulumi.prod.yaml: ml-endpoints:release.image.digest: required in a "
            "production stack",
        ),
        (
            lambda c: c["ml-endpoints:release"]["variants"][1].update(weight=5),
            "ml-endpoints:release.variants: weights are percent and must add up to 100, "
            "not 105 (champion=100, challenger=5)",
        ),
        (
            lambda c: c["ml-endpoints:release"]["image"].update(tag="latest"),
            "ml-endpoints:release.image.tag: 'latest' moves under a running deployment",
        ),
        (
            lambda c: c.update({"ml-endpoints:sagemkaer": {}}),
            "ml-endpoints:sagemkaer: not a known key; did you mean sagemaker?; keys: "
            "ml-endpoints:release, ml-endpoints:previous_release, ml-endpoints:policy",
        ),
        (
            lambda c: c["ml-endpoints:sagemaker"]["compute"].update(instance_type="ml.m5.hug"),
            "ml-endpoints:sagemaker.compute.instance_type: not a SageMaker hosting instance type",
        ),
        (
            lambda c: c["ml-endpoints:sagemaker"].update(
                variant_compute={"blue": {"instance_type": "ml.m5.large"}}
            ),
            "ml-endpoints:sagemaker.variant_compute.blue: not a variant of ml-endpoints:release "
            "(variants: champion, challenger)",
        ),
        (
            lambda c: c["ml-endpoints:release"]["variants"][1].pop("gcs_uri"),
            "ml-endpoints:release.variants[1].gcs_uri: required: ml-endpoints:vertex is enabled",
        ),
        (
            lambda c: c.pop("ml-endpoints:cluster"),
            "ml-endpoints:cluster: required while ml-endpoints:kubernetes is enabled: type eks, "
            "gke, existing or render",
        ),
        (
            lambda c: c["ml-endpoints:cluster"].update(subnet_ids=["subnet-1"]),
            "ml-endpoints:cluster.subnet_ids: List should have at least 2 items",
        ),
        (
            lambda c: c["ml-endpoints:cluster"].update(type="aks"),
            "ml-endpoints:cluster: Input tag 'aks' found using 'type' does not match any of the "
            "expected tags: 'eks', 'gke', 'existing', 'render'",
        ),
        (
            lambda c: c["ml-endpoints:cluster"].update(serving_namespace="default"),
            "ml-endpoints:cluster.serving_namespace: must equal ml-endpoints:kubernetes.namespace",
        ),
        (
            lambda c: c["ml-endpoints:kubernetes"].pop("gateway"),
            "ml-endpoints:kubernetes.gateway: required with more than one variant",
        ),
        # The components' own rules, reported at the stack key they are about:
        (
            lambda c: c["ml-endpoints:sagemaker"]["compute"].update(instance_count=9),
            "ml-endpoints:sagemaker.compute.instance_count: must lie within autoscaling "
            "min_instances..max_instances (2..8)",
        ),
        (
            lambda c: c["ml-endpoints:sagemaker"]["deployment"].update(
                step={"unit": "instances", "value": 2}
            ),
            "ml-endpoints:sagemaker.deployment.step.value: a canary step of 2 instances moves 2 "
            "of the 2 instances of ml-endpoints:sagemaker.compute.instance_count",
        ),
        (
            lambda c: c["ml-endpoints:sagemaker"].update(environment={"MODEL_NAME": "x"}),
            "ml-endpoints:sagemaker.environment: MODEL_NAME is set by the component",
        ),
        (
            lambda c: c["ml-endpoints:sagemaker"].update(
                environment={"ML_ENDPOINTS_SAGEMAKER_ENDPOINT": "x"}
            ),
            "ml-endpoints:sagemaker.environment: ML_ENDPOINTS_SAGEMAKER_ENDPOINT is set by the "
            "component",
        ),
        (
            lambda c: (
                c["ml-endpoints:release"]["variants"].append(
                    {
                        **c["ml-endpoints:release"]["variants"][1],
                        "name": "candidate",
                        "model_version": "16",
                    }
                ),
                c["ml-endpoints:sagemaker"]["alarms"].update(
                    rollback_on=["invocation_5xx_errors", "model_latency", "container_5xx", "drift"]
                ),
            ),
            "ml-endpoints:sagemaker.alarms.rollback_on: 4 rollback alarms per production variant "
            "x 3 variants = 12; SageMaker takes at most 10 (AutoRollbackConfig.Alarms)",
        ),
        (
            lambda c: c["ml-endpoints:vertex"]["compute"].update(
                accelerator={"type": "NVIDIA_L4", "count": 2}
            ),
            "ml-endpoints:vertex.compute.accelerator: g2-standard-8 comes with "
            "{type: NVIDIA_L4, count: 1}; set that",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(
                variant_compute={"challenger": {"machine_type": "n1-superfast-4"}}
            ),
            "ml-endpoints:vertex.variant_compute.challenger.machine_type: must be a Vertex AI "
            "machine type",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(
                network="projects/123456/global/networks/ml-vpc"
            ),
            "ml-endpoints:vertex.network: a private endpoint (VPC peering) serves one deployed "
            "model, and 2 variants are configured (champion, challenger)",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(operation_timeout_seconds=600),
            "ml-endpoints:vertex.operation_timeout_seconds: must be at least 1800 with GPU "
            "variants",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(endpoint_id="1234567890"),
            "ml-endpoints:vertex.endpoint_id: must be up to 9 digits without a leading zero",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(sample={"instances": [[1]], "file": "x"}),
            "ml-endpoints:vertex.sample: give exactly one of instances or file",
        ),
        (
            lambda c: c["ml-endpoints:release"]["variants"][1].update(name="2nd"),
            "ml-endpoints:release.variants[1].name: must be 1-63 lowercase letters, digits or "
            "'-', starting with a letter (ml-endpoints:vertex is enabled)",
        ),
        (
            lambda c: c["ml-endpoints:kubernetes"].update(workers=0),
            "ml-endpoints:kubernetes.workers: Input should be greater than or equal to 1",
        ),
        (
            lambda c: c["ml-endpoints:kubernetes"].update(replicas=3),
            "ml-endpoints:kubernetes.replicas: an HPA owns the replica count",
        ),
        (
            lambda c: c["ml-endpoints:kubernetes"].update(autoscaling=None),
            "ml-endpoints:kubernetes.replicas: without autoscaling, set a fixed replica count "
            "(variants champion, challenger)",
        ),
        (
            lambda c: c["ml-endpoints:kubernetes"].update(env={"MODEL_URI": "s3://elsewhere"}),
            "ml-endpoints:kubernetes.env: MODEL_URI is set from the typed args",
        ),
    ],
)
def test_errors_name_file_key_and_what_is_allowed(
    prod_config: dict[str, Any], edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    message = error_of(edited(prod_config, edit))
    assert message.startswith(SOURCE + ": ")
    assert expected in message


def _on_gcr(config: dict[str, Any], **repository: Any) -> None:
    """prod's Vertex target moved to the gcr.io repository that serves eu.gcr.io."""
    vertex = config["ml-endpoints:vertex"]
    vertex["image_repository"] = "eu.gcr.io/acme-ml-prod/ml-endpoints"
    vertex["repository"] = {"project": "acme-ml-prod", "gcr_host": "eu.gcr.io", **repository}


def test_a_stack_declares_a_gcr_repository_with_the_same_options(
    prod_config: dict[str, Any],
) -> None:
    key = "projects/acme-ml-prod/locations/europe/keyRings/ml/cryptoKeys/registry"
    stack = load_stack(
        edited(prod_config, lambda c: _on_gcr(c, kms_key_name=key, keep_recent_versions=3)),
        SOURCE,
    )
    registry = compose(stack).artifact_registry
    assert registry is not None
    assert (registry.repository, registry.location) == ("eu.gcr.io", "europe")
    assert registry.image_base == "eu.gcr.io/acme-ml-prod"
    assert (registry.kms_key_name, registry.keep_recent_versions) == (key, 3)
    assert registry.immutable_tags
    assert registry.vulnerability_scanning
    vertex = compose(stack).vertex
    assert vertex is not None
    assert vertex.variants[0].image.startswith("eu.gcr.io/acme-ml-prod/ml-endpoints@sha256:")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: _on_gcr(c, region="us-central1"),
            "stacks/Pulumi.prod.yaml: ml-endpoints:vertex.repository.region: eu.gcr.io is "
            "served from the europe multi-region: set region: europe or leave region out "
            "(gcr.io hosts and their locations: gcr.io -> us, us.gcr.io -> us, eu.gcr.io -> "
            "europe, asia.gcr.io -> asia) (got 'us-central1')",
        ),
        (
            lambda c: _on_gcr(c, gcr_host="eu.gcr.com"),
            "stacks/Pulumi.prod.yaml: ml-endpoints:vertex.repository.gcr_host: must be one of "
            "gcr.io, us.gcr.io, eu.gcr.io, asia.gcr.io",
        ),
        (
            lambda c: _on_gcr(c, repository_id="serving"),
            "stacks/Pulumi.prod.yaml: ml-endpoints:vertex.repository.repository_id: leave it "
            "out with gcr_host",
        ),
        (
            lambda c: c["ml-endpoints:vertex"]["repository"].update(
                repository_id="eu.gcr.io", region="europe"
            ),
            "stacks/Pulumi.prod.yaml: ml-endpoints:vertex.repository.repository_id: eu.gcr.io "
            "is a Container Registry host: set gcr_host: eu.gcr.io instead",
        ),
        (
            lambda c: (
                _on_gcr(c),
                c["ml-endpoints:vertex"].update(
                    image_repository="gcr.io/acme-ml-prod/ml-endpoints"
                ),
            ),
            "stacks/Pulumi.prod.yaml: ml-endpoints:vertex.image_repository: must be an image in "
            "the repository this target declares (ml-endpoints:vertex.repository): "
            "eu.gcr.io/acme-ml-prod/IMAGE (got 'gcr.io/acme-ml-prod/ml-endpoints')",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(
                image_repository="europe-west4-docker.pkg.dev/acme-ml-prod/serving/ml-endpoints"
            ),
            "ml-endpoints:vertex.image_repository: must be an image in the repository this "
            "target declares (ml-endpoints:vertex.repository): "
            "us-central1-docker.pkg.dev/acme-ml-prod/serving/IMAGE",
        ),
        (
            lambda c: c["ml-endpoints:vertex"].update(
                image_repository="ghcr.io/acme/ml-endpoints", repository=None
            ),
            "stacks/Pulumi.prod.yaml: ml-endpoints:vertex.image_repository: registry ghcr.io is "
            "not Artifact Registry, and Vertex AI pulls model containers from Artifact Registry "
            "only",
        ),
    ],
)
def test_gcr_repository_and_image_errors_name_file_key_and_what_is_allowed(
    prod_config: dict[str, Any], edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    message = error_of(edited(prod_config, edit))
    assert expected in message, message


GKE_CLUSTER = {
    "type": "gke",
    "project": "acme-ml-prod",
    "location": "us-central1",
    "serving_namespace": "ml-prod",
    # A regional cluster's GPU pool names its zones (issue 14 item 7).
    "gpu_nodes": {"zones": ["us-central1-a"]},
}
PROD_ECR = "333333333333.dkr.ecr.us-east-1.amazonaws.com/ml-endpoints/serving"


def _kubernetes_on(cluster: dict[str, Any] | None, image: str) -> Callable[[dict[str, Any]], None]:
    """prod's Kubernetes target pulling ``image``, on ``cluster`` (None: prod's EKS cluster)."""

    def edit(config: dict[str, Any]) -> None:
        config["ml-endpoints:kubernetes"]["image_repository"] = image
        if cluster is not None:
            config["ml-endpoints:cluster"] = cluster

    return edit


@pytest.mark.parametrize(
    ("cluster", "image"),
    [
        (GKE_CLUSTER, "eu.gcr.io/acme-ml-prod/ml-endpoints"),
        (GKE_CLUSTER, "gcr.io/example.com/acme-ml/ml-endpoints"),
        (GKE_CLUSTER, "us-central1-docker.pkg.dev/acme-ml-prod/serving/ml-endpoints"),
        (None, PROD_ECR),
        ({"type": "existing", "context": "any"}, PROD_ECR),
        ({"type": "existing", "context": "any"}, "asia.gcr.io/acme-ml-prod/ml-endpoints"),
    ],
)
def test_a_cluster_deploys_images_from_a_registry_its_nodes_can_pull(
    prod_config: dict[str, Any], cluster: dict[str, Any] | None, image: str
) -> None:
    """GKE nodes pull from Artifact Registry, gcr.io repositories included (integrate-gke);
    EKS nodes from ECR (create-node-role.html); clusters this project does not create are
    not judged."""
    stack = load_stack(edited(prod_config, _kubernetes_on(cluster, image)), SOURCE)
    assert stack.kubernetes is not None
    assert stack.kubernetes.image_repository == image


@pytest.mark.parametrize(
    ("cluster", "image", "expected"),
    [
        (
            GKE_CLUSTER,
            PROD_ECR,
            "stacks/Pulumi.prod.yaml: ml-endpoints:kubernetes.image_repository: ECR repository "
            "ml-endpoints/serving (account 333333333333, us-east-1) cannot be pulled by the GKE "
            "nodes of ml-endpoints:cluster (type gke): they authenticate to Artifact Registry "
            "with their Google service account and hold no ECR token",
        ),
        (
            None,
            "eu.gcr.io/acme-ml-prod/ml-endpoints",
            "stacks/Pulumi.prod.yaml: ml-endpoints:kubernetes.image_repository: Artifact "
            "Registry repository eu.gcr.io (project acme-ml-prod, europe) cannot be pulled by "
            "the EKS nodes of ml-endpoints:cluster (type eks)",
        ),
        (
            None,
            "us-central1-docker.pkg.dev/acme-ml-prod/serving/ml-endpoints",
            "ml-endpoints:kubernetes.image_repository: Artifact Registry repository serving "
            "(project acme-ml-prod, us-central1) cannot be pulled by the EKS nodes",
        ),
    ],
)
def test_an_image_the_clusters_nodes_cannot_pull_is_refused_at_its_key(
    prod_config: dict[str, Any], cluster: dict[str, Any] | None, image: str, expected: str
) -> None:
    """Issue 20: Kubernetes images are tied to their registry (infra/registries.py) and that
    registry to the nodes that pull from it; the pods carry no imagePullSecrets, so a
    cross-cloud image would stay in ImagePullBackOff until the rollout times out."""
    message = error_of(edited(prod_config, _kubernetes_on(cluster, image)))
    assert expected in message, message


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("ml-endpoints:kubernetes.env.API_TOKEN", "s3cr3t-value", "'API_TOKEN' names a secret"),
        ("ml-endpoints:kubernetes.env.UPSTREAM", "AKIAIOSFODNN7EXAMPLE", "AWS access key ID"),
        (
            "ml-endpoints:kubernetes.env.TLS",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIB",
            "looks like a private key",
        ),
    ],
)
def test_plain_text_secrets_are_rejected(
    prod_config: dict[str, Any], key: str, value: str, reason: str
) -> None:
    name = key.rsplit(".", 1)[1]
    config = edited(prod_config, lambda c: c["ml-endpoints:kubernetes"].update(env={name: value}))
    message = error_of(config)
    assert message.startswith(f"{SOURCE}: {key}: ")
    assert reason in message
    assert f"pulumi config set --secret --path '{key}'" in message


def test_encrypted_and_referenced_values_are_accepted(tmp_path: Path) -> None:
    document = load_document(stack_file("dev", STACKS_DIR))
    cluster = document["config"]["ml-endpoints:cluster"]
    cluster["kubeconfig"] = {"secure": "v1:c2VjcmV0IGJ5dGVz"}
    document["config"]["ml-endpoints:kubernetes"]["env"] = {
        "API_TOKEN": {"secure": "v1:dG9rZW4="},
        "TOKEN_FILE": "/var/run/secrets/token",
    }
    (tmp_path / "Pulumi.dev.yaml").write_text(dump_document(document))
    config = load_stack_file("dev", tmp_path)
    assert isinstance(config.cluster, ExistingClusterArgs)
    assert isinstance(config.cluster.kubeconfig, Secret)
    assert str(config.cluster.kubeconfig) == SECRET_PLACEHOLDER
    assert config.kubernetes is not None
    assert isinstance(config.kubernetes.env["API_TOKEN"], Secret)
    assert config.kubernetes.env["TOKEN_FILE"] == "/var/run/secrets/token"


def test_schema_lists_every_stack_key() -> None:
    assert list(StackConfig.model_fields) == [
        "release",
        "previous_release",
        "policy",
        "sagemaker",
        "vertex",
        "kubernetes",
        "cluster",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_verify_reads_every_stack(stack: str) -> None:
    """``ml-endpoints verify`` gets each enabled endpoint's args from the typed stack, and its
    sample payload."""
    components = compose(load_stack_file(stack, STACKS_DIR))
    assert components.sagemaker is not None
    assert sample_body(components.sagemaker, STACKS_DIR)
    if stack == "dev":
        assert components.vertex is None  # switched off
        return
    assert components.vertex is not None
    assert sample_instances(components.vertex, STACKS_DIR) == [[0.12, 0.57, 0.33, 0.91]]


@pytest.mark.parametrize(
    ("edit", "key", "suggestion"),
    [
        (
            ("ml-endpoints:sagemaker", "compute", "instance_type"),
            "sagemaker.compute.instance_typ",
            "instance_type",
        ),
        (("ml-endpoints:release", "variants", 0, "weight"), "release.variants[0].weigth", "weight"),
    ],
)
def test_an_unknown_key_is_reported_first_with_a_did_you_mean(
    edit: tuple[Any, ...], key: str, suggestion: str
) -> None:
    """A misspelt key must not surface as "instance_type: Field required (and 1 more error)"."""
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    parent = config
    for part in edit[:-1]:
        parent = parent[part]
    wrong = key.rsplit(".", 1)[1]
    parent[wrong] = parent.pop(edit[-1])
    with pytest.raises(StackError) as raised:
        load_stack(config, "stacks/Pulumi.dev.yaml")
    message = str(raised.value)
    assert message.startswith(f"stacks/Pulumi.dev.yaml: ml-endpoints:{key}: not a known key; ")
    assert f"did you mean {suggestion}?" in message
    assert "Field required" not in message
    assert "more error" not in message
