"""Invalid ``kubernetes`` configs fail before anything is declared, naming the full key path."""

from __future__ import annotations

from typing import Any

import pytest

from infra.k8s.config import load, parse_quantity
from infra.validation import ConfigError
from tests.infra.k8s.support import AB_VARIANTS, base_config


def _error(config: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(config)
    return caught.value


def test_weights_must_add_up_to_100() -> None:
    variants = [dict(AB_VARIANTS[0], weight=80), dict(AB_VARIANTS[1], weight=30)]
    error = _error(base_config(variants=variants, gateway={"name": "public"}))
    assert error.key == "kubernetes.variants"
    assert "add up to 100, not 110 (champion=80, challenger=30)" in str(error)


def test_weight_is_a_percentage() -> None:
    variants = [AB_VARIANTS[0], dict(AB_VARIANTS[1], weight=150)]
    error = _error(base_config(variants=variants, gateway={"name": "public"}))
    assert error.key == "kubernetes.variants[1].weight"
    assert "less than or equal to 100" in str(error)
    assert "(got 150)" in str(error)


def test_variant_names_are_unique() -> None:
    variants = [dict(AB_VARIANTS[0], weight=50), dict(AB_VARIANTS[0], weight=50)]
    error = _error(base_config(variants=variants, gateway={"name": "public"}))
    assert error.key == "kubernetes.variants"
    assert "unique; repeated: champion" in str(error)


def test_several_variants_need_a_gateway() -> None:
    error = _error(base_config(variants=AB_VARIANTS))
    assert error.key == "kubernetes.gateway"
    assert "required with more than one variant (2 given)" in str(error)


def test_replicas_conflict_with_autoscaling() -> None:
    error = _error(base_config(replicas=3))
    assert error.key == "kubernetes.replicas"
    assert "an HPA owns the replica count" in str(error)


def test_fixed_count_needed_without_autoscaling() -> None:
    error = _error(base_config(autoscaling=None))
    assert error.key == "kubernetes.replicas"
    assert "set a fixed replica count (variants champion)" in str(error)


def test_max_replicas_not_below_min() -> None:
    error = _error(base_config(autoscaling={"min_replicas": 5, "max_replicas": 2}))
    assert error.key == "kubernetes.autoscaling.max_replicas"
    assert "at least min_replicas (5)" in str(error)


def test_limit_not_below_request() -> None:
    error = _error(base_config(resources={"memory_request": "2Gi", "memory_limit": "1Gi"}))
    assert error.key == "kubernetes.resources.memory_limit"
    assert "at least memory_request (2Gi)" in str(error)


def test_quantities_are_checked() -> None:
    error = _error(base_config(resources={"cpu_request": "half"}))
    assert error.key == "kubernetes.resources.cpu_request"
    assert "not a Kubernetes quantity" in str(error)


def test_digest_is_sha256() -> None:
    error = _error(base_config(image_digest="sha256:abc"))
    assert error.key == "kubernetes.image_digest"


def test_image_carries_no_digest() -> None:
    error = _error(base_config(image="ghcr.io/acme/ml-endpoints@sha256:" + "a" * 64))
    assert error.key == "kubernetes.image"


def test_variant_digest_needs_variant_image() -> None:
    variant = dict(AB_VARIANTS[0], weight=100, image_digest="sha256:" + "b" * 64)
    error = _error(base_config(variants=[variant]))
    assert error.key == "kubernetes.variants[0].image_digest"
    assert "needs the variant's own image" in str(error)


def test_env_cannot_override_typed_args() -> None:
    error = _error(base_config(env={"MODEL_URI": "s3://elsewhere"}))
    assert error.key == "kubernetes.env"
    assert "MODEL_URI is set from the typed args" in str(error)


def test_env_cannot_fake_platform_variables() -> None:
    error = _error(base_config(env={"AIP_MODE": "PREDICTION"}))
    assert error.key == "kubernetes.env"
    assert "set by those platforms only" in str(error)


def test_unknown_keys_are_rejected() -> None:
    variants = [{"name": "champion", "model_uri": "s3://m/x", "wieght": 100}]
    error = _error(base_config(variants=variants))
    assert error.key == "kubernetes.variants[0].wieght"
    assert "Extra inputs are not permitted" in str(error)


def test_variant_name_is_a_dns_label() -> None:
    error = _error(base_config(variants=[{"name": "Champion_1", "model_uri": "s3://m/x"}]))
    assert error.key == "kubernetes.variants[0].name"


def test_model_uri_scheme() -> None:
    error = _error(base_config(variants=[{"name": "a", "model_uri": "http://host/model"}]))
    assert error.key == "kubernetes.variants[0].model_uri"


def test_ingress_peer_needs_a_selector() -> None:
    error = _error(base_config(ingress_from=[{}]))
    assert error.key == "kubernetes.ingress_from[0].cidr"
    assert "namespace_labels, pod_labels (or both), or cidr" in str(error)


def test_variants_required() -> None:
    error = _error(base_config(variants=[]))
    assert error.key == "kubernetes.variants"


def test_parse_quantity() -> None:
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert parse_quantity("1Gi") == 1024**3
    assert parse_quantity("2k") == 2000
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("1 GB")
