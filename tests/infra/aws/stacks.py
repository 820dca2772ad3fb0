"""Configurations the AWS tests share: the components' args (as dicts), and a stack file's
``config`` that composes into the two-variant endpoint."""

from __future__ import annotations

import copy
from typing import Any

ACCOUNT = "123456789012"
REPOSITORY = "ml-endpoints/serving"
CAPTURE = "s3://ml-capture/churn"
KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
REPOSITORY_URI = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}"
IMAGE = f"{REPOSITORY_URI}:v1.2.0"


def model(version: str, *, tag: str | None = None) -> dict[str, Any]:
    """A model spec: image from the component's repository (``tag``) or the fixed IMAGE."""
    spec: dict[str, Any] = {
        "model_data_url": f"s3://ml-models/churn/{version}/model.tar.gz",
        "model_name": "churn",
        "model_version": version,
    }
    spec.update({"image_tag": tag} if tag else {"image": IMAGE})
    return spec


def one_variant() -> dict[str, Any]:
    return {
        "endpoint_name": "churn",
        "variants": [{"name": "main", "instance_type": "ml.m5.large", "model": model("v1")}],
        "data_capture": {"destination_s3_uri": CAPTURE},
        "sample_payload": {"body": {"instances": [[1.0, 2.0, 3.0]]}},
    }


def two_variants() -> dict[str, Any]:
    return {
        "endpoint_name": "churn",
        "variants": [
            {
                "name": "blue",
                "weight": 75,
                "instance_type": "ml.m5.large",
                "instance_count": 2,
                "model": model("v1", tag="v1.2.0"),
                "autoscaling": {
                    "min_instances": 2,
                    "max_instances": 6,
                    "target_invocations_per_instance": 250,
                },
            },
            {
                "name": "green",
                "weight": 25,
                "instance_type": "ml.g4dn.xlarge",
                "instance_count": 2,
                "model": model("v2", tag="v1.3.0"),
                "autoscaling": {
                    "min_instances": 2,
                    "max_instances": 3,
                    "target_invocations_per_instance": 100,
                    "scale_in_cooldown_s": 600,
                    "scale_out_cooldown_s": 30,
                },
            },
        ],
        "deployment": {"strategy": "canary", "step": {"value": 25}, "wait_interval_s": 900},
        "data_capture": {"destination_s3_uri": CAPTURE, "sampling_percentage": 20},
        "sample_payload": {"body": '{"instances": [[1.0, 2.0, 3.0]]}'},
    }


def two_variant_stack() -> dict[str, Any]:
    """A stack file's ``config``: the release and the SageMaker target of :func:`two_variants`
    (one image for both variants, as a release has)."""
    blue, green = two_variants()["variants"]
    compute = {
        k: v for k, v in blue.items() if k in ("instance_type", "instance_count", "autoscaling")
    }
    green_compute = {
        k: v for k, v in green.items() if k in ("instance_type", "instance_count", "autoscaling")
    }
    return {
        "aws:region": "us-east-1",
        "ml-endpoints:release": {
            "model_name": "churn",
            "image": {"tag": "v1.2.0"},
            "variants": [
                {
                    "name": variant["name"],
                    "model_version": variant["model"]["model_version"],
                    "weight": variant["weight"],
                    "s3_uri": variant["model"]["model_data_url"],
                }
                for variant in (blue, green)
            ],
        },
        "ml-endpoints:sagemaker": {
            "endpoint_name": "churn",
            "image_repository": REPOSITORY_URI,
            "compute": compute,
            "variant_compute": {"green": green_compute},
            "deployment": two_variants()["deployment"],
            "data_capture": two_variants()["data_capture"],
            "sample_payload": two_variants()["sample_payload"],
        },
    }


def serverless() -> dict[str, Any]:
    return {
        "endpoint_name": "churn-serverless",
        "variants": [
            {
                "name": "main",
                "serverless": {"memory_mb": 2048, "max_concurrency": 20},
                "model": model("v1"),
            }
        ],
        "data_capture": {"enabled": False},
    }


def shadow() -> dict[str, Any]:
    config = one_variant()
    config["shadow_variant"] = {
        "name": "candidate",
        "instance_type": "ml.m5.xlarge",
        "model": model("v2"),
    }
    return config


def changed(config: dict[str, Any], *path: str | int, value: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with the value at ``path`` replaced (or added)."""
    result = copy.deepcopy(config)
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return result


def without(config: dict[str, Any], *path: str | int) -> dict[str, Any]:
    """A deep copy of ``config`` without the key at ``path``."""
    result = copy.deepcopy(config)
    node = result
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return result
