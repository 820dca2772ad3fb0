"""Validation of the GCP stack config: every error names its key, its value and what is allowed."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from infra.gcp.config import (
    ACCELERATOR_MACHINES,
    N1_ACCELERATOR_COUNTS,
    AcceleratorType,
    artifact_registry_args_from_config,
    vertex_args_from_config,
)
from infra.validation import ConfigError
from tests.infra.gcp.conftest import vertex_config


def with_variant(**fields: Any) -> dict[str, Any]:
    """The two-variant config, its challenger made a CPU variant and then given ``fields``."""
    config = vertex_config()
    challenger = config["variants"][1]
    del challenger["accelerator"], challenger["accelerator_duty_cycle_target"]
    challenger.update(fields)
    return config


def error_of(config: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        vertex_args_from_config(config)
    return error.value


@pytest.mark.parametrize(
    ("config", "key", "says"),
    [
        (vertex_config(region="us-central9"), "vertex.region", "Vertex AI prediction is not"),
        (vertex_config(region="uscentral"), "vertex.region", "a GCP region name"),
        (vertex_config(project="My_Project"), "vertex.project", "a GCP project ID"),
        (
            with_variant(machine_type="n1-superfast-4"),
            "vertex.variants[1].machine_type",
            "'n1-standard-4', 'e2-standard-8', 'a2-highgpu-1g' or 'g2-standard-8'",
        ),
        (
            with_variant(accelerator={"type": "NVIDIA_TESLA_T4", "count": 3}),
            "vertex.variants[1].accelerator",
            "NVIDIA_TESLA_T4 on n1 machines comes in counts 1, 2, 4, not 3",
        ),
        (
            with_variant(accelerator={"type": "NVIDIA_L4"}),
            "vertex.variants[1].accelerator",
            "NVIDIA_L4 only comes with machine types g2-standard-12",
        ),
        (
            with_variant(machine_type="g2-standard-24"),
            "vertex.variants[1].accelerator",
            "g2-standard-24 comes with {type: NVIDIA_L4, count: 2}",
        ),
        (
            with_variant(
                machine_type="a2-highgpu-2g", accelerator={"type": "NVIDIA_TESLA_A100", "count": 1}
            ),
            "vertex.variants[1].accelerator",
            "a2-highgpu-2g comes with {type: NVIDIA_TESLA_A100, count: 2}",
        ),
        (
            with_variant(machine_type="e2-standard-4", accelerator={"type": "NVIDIA_TESLA_T4"}),
            "vertex.variants[1].accelerator",
            "e2-standard-4 takes no accelerator",
        ),
        (
            with_variant(accelerator={"type": "NVIDIA_GTX_1080"}),
            "vertex.variants[1].accelerator.type",
            "'NVIDIA_TESLA_T4'",
        ),
        (
            with_variant(min_replicas=4, max_replicas=2),
            "vertex.variants[1].max_replicas",
            "must be >= min_replicas (4)",
        ),
        (
            with_variant(min_replicas=0),
            "vertex.variants[1].min_replicas",
            "greater than or equal to 1 (got 0)",
        ),
        (
            with_variant(accelerator_duty_cycle_target=60),
            "vertex.variants[1].accelerator_duty_cycle_target",
            "needs an accelerator",
        ),
        (
            with_variant(env={"AIP_HTTP_PORT": "9000"}),
            "vertex.variants[1].env",
            "Vertex AI sets AIP_* variables itself",
        ),
        (
            with_variant(env={"MODEL_NAME": "x"}),
            "vertex.variants[1].env",
            "MODEL_NAME is set by the component",
        ),
        (
            with_variant(image="us-docker.pkg.dev/p/r/serving"),
            "vertex.variants[1].image",
            "with a tag or digest",
        ),
        (
            with_variant(image="us-docker.pkg.dev/p/r/serving:latest"),
            "vertex.variants[1].image",
            "':latest' changes under a deployment",
        ),
        (
            with_variant(artifact_uri="s3://bucket/model"),
            "vertex.variants[1].artifact_uri",
            "a gs://BUCKET/PATH URI",
        ),
        (with_variant(name="Champion 2"), "vertex.variants[1].name", "lowercase letters"),
        (with_variant(name="champion"), "vertex.variants", "repeated: champion"),
        (with_variant(gpu=1), "vertex.variants[1].gpu", "Extra inputs are not permitted"),
        (
            vertex_config(traffic={"champion": 90, "challenger": 5}),
            "vertex.traffic",
            "weights are percent and must add up to 100, not 95 (champion=90, challenger=5)",
        ),
        (
            vertex_config(traffic={"champion": 90, "canary": 10}),
            "vertex.traffic",
            "['canary'] are not variant names; variants: ['champion', 'challenger']",
        ),
        (
            vertex_config(traffic={"champion": 90.5, "challenger": 9.5}),
            "vertex.traffic.champion",
            "valid integer",
        ),
        (
            vertex_config(traffic={"champion": 110, "challenger": -10}),
            "vertex.traffic.champion",
            "less than or equal to 100",
        ),
        (vertex_config(traffic=None), "vertex.traffic", "required with several variants"),
        (vertex_config(endpoint_id="0123"), "vertex.endpoint_id", "without a leading zero"),
        (
            vertex_config(network="projects/123456/global/networks/ml-vpc"),
            "vertex.network",
            "a private endpoint (VPC peering) serves one deployed model, and 2 variants are "
            "configured (champion, challenger)",
        ),
        (
            vertex_config(operation_timeout_seconds=900),
            "vertex.operation_timeout_seconds",
            "must be at least 1800 with GPU variants",
        ),
        (
            vertex_config(network="my-vpc"),
            "vertex.network",
            "projects/PROJECT_NUMBER/global/networks/NAME",
        ),
        (
            vertex_config(request_logging={"bigquery_table": "bq://p", "sampling_rate": 0.1}),
            "vertex.request_logging.bigquery_table",
            "bq://PROJECT.DATASET[.TABLE]",
        ),
        (
            vertex_config(
                request_logging={"bigquery_table": "bq://ml-project.logs", "sampling_rate": 2}
            ),
            "vertex.request_logging.sampling_rate",
            "less than or equal to 1",
        ),
        (vertex_config(labels={"Team": "ml"}), "vertex.labels", "label key 'Team'"),
    ],
)
def test_invalid_vertex_config_names_the_key(config: dict[str, Any], key: str, says: str) -> None:
    error = error_of(config)
    assert error.key == key
    assert says in str(error)
    assert str(error).startswith(f"{key}: ")


@pytest.mark.parametrize(("machine", "fixed"), sorted(ACCELERATOR_MACHINES.items()))
def test_every_accelerator_optimized_machine_takes_its_own_gpus(
    machine: str, fixed: tuple[str, int]
) -> None:
    kind, count = fixed
    args = vertex_args_from_config(
        with_variant(machine_type=machine, accelerator={"type": kind, "count": count})
    )
    assert args.variants[1].accelerator is not None
    assert (args.variants[1].accelerator.type, args.variants[1].accelerator.count) == fixed


@pytest.mark.parametrize(
    ("machine", "accelerator"),
    [
        ("n1-standard-4", {"type": "NVIDIA_TESLA_T4", "count": 4}),
        ("n1-highmem-16", {"type": "NVIDIA_TESLA_V100", "count": 8}),
        ("e2-standard-8", None),
        ("n2-highcpu-32", None),
        ("c2d-standard-8", None),
    ],
)
def test_valid_machine_and_accelerator_pairs(machine: str, accelerator: Any) -> None:
    fields: dict[str, Any] = {"machine_type": machine}
    if accelerator:
        fields["accelerator"] = accelerator
    assert vertex_args_from_config(with_variant(**fields)).variants[1].machine_type == machine


def test_defaults_fill_the_traffic_of_a_single_variant_and_the_replica_bounds() -> None:
    config = vertex_config(traffic=None)
    config["variants"] = config["variants"][:1]
    del config["variants"][0]["max_replicas"]
    args = vertex_args_from_config(config)
    assert args.split == {"champion": 100}
    assert args.variants[0].replica_bounds == (1, 1)
    assert args.endpoint_api == "us-central1-aiplatform.googleapis.com"


def test_traffic_lists_every_variant_missing_ones_at_zero() -> None:
    args = vertex_args_from_config(vertex_config(traffic={"challenger": 100}))
    assert args.split == {"champion": 0, "challenger": 100}


def test_args_are_immutable() -> None:
    args = vertex_args_from_config(vertex_config())
    with pytest.raises(ValueError, match="frozen"):
        args.region = "europe-west4"  # type: ignore[misc]


REGISTRY = {"project": "ml-project", "region": "us-central1", "repository_id": "serving"}


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ({"region": "mars-north1"}, "artifact_registry.region", "Artifact Registry is not"),
        ({"repository_id": "Serving"}, "artifact_registry.repository_id", "lowercase letters"),
        (
            {"kms_key_name": "my-key"},
            "artifact_registry.kms_key_name",
            "projects/P/locations/L/keyRings/R/cryptoKeys/K",
        ),
        (
            {"delete_untagged_after_days": 0},
            "artifact_registry.delete_untagged_after_days",
            "greater than or equal to 1",
        ),
        ({"scanning": True}, "artifact_registry.scanning", "Extra inputs are not permitted"),
    ],
)
def test_invalid_registry_config_names_the_key(change: dict[str, Any], key: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        artifact_registry_args_from_config({**REGISTRY, **change})
    assert error.value.key == key
    assert says in str(error.value)


def test_registry_accepts_multi_regions() -> None:
    assert artifact_registry_args_from_config({**REGISTRY, "region": "europe"}).region == "europe"


GCR = {"project": "ml-project", "gcr_host": "eu.gcr.io"}
"""A gcr.io repository (Artifact Registry documentation, "gcr.io repositories": the repository
is named after the host and lives in the host's multi-region)."""


@pytest.mark.parametrize(
    ("host", "location"),
    [("gcr.io", "us"), ("us.gcr.io", "us"), ("eu.gcr.io", "europe"), ("asia.gcr.io", "asia")],
)
def test_a_gcr_host_names_and_places_the_repository(host: str, location: str) -> None:
    args = artifact_registry_args_from_config({"project": "ml-project", "gcr_host": host})
    assert (args.repository, args.location) == (host, location)
    assert args.image_base == f"{host}/ml-project"
    same = artifact_registry_args_from_config(
        {"project": "ml-project", "gcr_host": host, "region": location}
    )
    assert (same.repository, same.location) == (host, location)


def test_a_named_repository_keeps_its_id_region_and_pkg_dev_base() -> None:
    args = artifact_registry_args_from_config(REGISTRY)
    assert (args.repository, args.location) == ("serving", "us-central1")
    assert args.image_base == "us-central1-docker.pkg.dev/ml-project/serving"


@pytest.mark.parametrize(
    ("config", "key", "says"),
    [
        (
            {**GCR, "region": "europe-west4"},
            "artifact_registry.region",
            "eu.gcr.io is served from the europe multi-region: set region: europe or leave "
            "region out (gcr.io hosts and their locations: gcr.io -> us, us.gcr.io -> us, "
            "eu.gcr.io -> europe, asia.gcr.io -> asia) (got 'europe-west4')",
        ),
        (
            {**GCR, "gcr_host": "gcr.io", "region": "europe"},
            "artifact_registry.region",
            "gcr.io is served from the us multi-region",
        ),
        (
            {**GCR, "gcr_host": "europe.gcr.io"},
            "artifact_registry.gcr_host",
            "must be one of gcr.io, us.gcr.io, eu.gcr.io, asia.gcr.io",
        ),
        (
            {**GCR, "gcr_host": "mirror.gcr.io"},
            "artifact_registry.gcr_host",
            "for another name, set repository_id and region (got 'mirror.gcr.io')",
        ),
        (
            {**GCR, "repository_id": "serving"},
            "artifact_registry.repository_id",
            "leave it out with gcr_host: the repository serving eu.gcr.io is named eu.gcr.io",
        ),
        (
            {**REGISTRY, "repository_id": "eu.gcr.io", "region": "europe"},
            "artifact_registry.repository_id",
            "eu.gcr.io is a Container Registry host: set gcr_host: eu.gcr.io instead",
        ),
        (
            {"project": "ml-project", "region": "us-central1"},
            "artifact_registry.repository_id",
            "required (or gcr_host, for a gcr.io repository)",
        ),
        (
            {"project": "ml-project", "repository_id": "serving"},
            "artifact_registry.region",
            "required (or gcr_host, for a gcr.io repository)",
        ),
    ],
)
def test_gcr_host_errors_name_the_key_and_what_is_allowed(
    config: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as error:
        artifact_registry_args_from_config(config)
    assert error.value.key == key
    assert says in str(error.value)


@pytest.mark.parametrize(
    "image",
    [
        "eu.gcr.io/ml-project/serving/ml-endpoints:1.0.0",
        "gcr.io/ml-project/ml-endpoints@sha256:" + "ab" * 32,
        "us-central1-docker.pkg.dev/ml-project/serving/ml-endpoints:1.0.0",
    ],
)
def test_vertex_takes_images_from_artifact_registry_gcr_hosts_included(image: str) -> None:
    assert vertex_args_from_config(with_variant(image=image)).variants[1].image == image


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("ghcr.io/acme/ml-endpoints:1.0.0", "registry ghcr.io"),
        ("mirror.gcr.io/acme/ml-endpoints:1.0.0", "registry mirror.gcr.io"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:1.0.0", "ECR repository serving"),
    ],
)
def test_vertex_refuses_images_outside_artifact_registry(image: str, registry: str) -> None:
    """``ModelContainerSpec.image_uri`` "must identify an image in Artifact Registry or
    Container Registry" (python-aiplatform ``google/cloud/aiplatform_v1/types/model.py``), and
    Container Registry's URLs are now served by Artifact Registry's gcr.io repositories."""
    error = error_of(with_variant(image=image))
    assert error.key == "vertex.variants[1].image"
    assert f"{registry}" in str(error)
    assert "Vertex AI pulls model containers from Artifact Registry only" in str(error)


def test_the_accelerator_table_uses_the_api_names() -> None:
    from google.cloud import aiplatform_v1

    api = {a.name for a in aiplatform_v1.AcceleratorType}
    table = set(N1_ACCELERATOR_COUNTS) | {kind for kind, _ in ACCELERATOR_MACHINES.values()}
    assert table == set(get_args(AcceleratorType))
    assert table <= api


def test_a_numeric_endpoint_id_from_yaml_is_accepted_as_text() -> None:
    assert vertex_args_from_config(vertex_config(endpoint_id=4242)).endpoint_id == "4242"


@pytest.mark.parametrize(
    ("endpoint_id", "valid"),
    [
        ("4242", True),
        ("123456789", True),
        ("reranker-prod", True),
        ("r", True),
        ("r" + "e" * 62, True),
        ("1234567890", False),  # 10 digits: the older rule, no longer accepted
        ("0123", False),
        ("r" + "e" * 63, False),
        ("reranker-", False),
        ("Reranker", False),
        ("-reranker", False),
        ("rer_anker", False),
        ("12ab", False),
    ],
)
def test_endpoint_ids_follow_the_current_api_reference(endpoint_id: str, valid: bool) -> None:
    """``CreateEndpointRequest.endpoint_id``: "If the first character is a letter, this value
    may be up to 63 characters, and valid characters are [a-z0-9-]. The last character must be a
    letter or number. If the first character is a number, this value may be up to 9 characters,
    and valid characters are [0-9] with no leading zeros" (python-aiplatform
    ``google/cloud/aiplatform_v1/types/endpoint_service.py``; REST reference
    https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/create).
    """
    config = vertex_config(endpoint_id=endpoint_id)
    if valid:
        assert vertex_args_from_config(config).endpoint_id == endpoint_id
    else:
        error = error_of(config)
        assert error.key == "vertex.endpoint_id"
        assert "up to 9 digits without a leading zero, or up to 63 lowercase letters" in str(error)


def test_a_private_endpoint_takes_its_one_variant() -> None:
    """Private (VPC-peered) endpoints: "Only support one model per private endpoint"
    (https://cloud.google.com/vertex-ai/docs/predictions/using-private-endpoints)."""
    config = vertex_config(network="projects/123456/global/networks/ml-vpc")
    config["variants"] = config["variants"][:1]
    config["traffic"] = {"champion": 100}
    assert vertex_args_from_config(config).network == "projects/123456/global/networks/ml-vpc"


def test_operation_waits_outlast_a_gpu_deployment() -> None:
    """A model on GPUs takes 15-30 minutes to deploy (python-aiplatform#3329 "Model deploy
    timeout in 900 seconds", GoogleCloudPlatform/vertex-ai-samples#2103); the provider's wait
    for one operation (``operation.result(timeout=...)``) must outlast it by default, and a
    shorter one is refused where a variant has GPUs (without GPUs it is the user's choice)."""
    gpu_deploy_seconds = 30 * 60
    assert vertex_args_from_config(vertex_config()).operation_timeout_seconds > gpu_deploy_seconds
    cpu_only = {**with_variant(), "operation_timeout_seconds": 900}
    assert vertex_args_from_config(cpu_only).operation_timeout_seconds == 900
