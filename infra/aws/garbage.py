"""Remove the SageMaker models and endpoint configurations that no endpoint uses.

Updates never delete a configuration or a model (:mod:`infra.aws.endpoint_provider`): after a
rollback the old ones are what serves, and SageMaker accepts ``DeleteEndpointConfig`` for a
configuration in use, leaving the endpoint unable to update (hashicorp/terraform-provider-aws
#48997). They are removed here instead, only when provably unused:

- candidates are the configurations and models tagged ``ml-endpoints:endpoint=<name>`` (those
  the provider created for that endpoint), older than ``min_age_s`` — a ``pulumi up`` in flight
  may have just created one it is about to deploy;
- in use is every configuration any endpoint of the region runs or is deploying
  (``EndpointConfigName`` and ``PendingDeploymentSummary.EndpointConfigName``), and every model
  those configurations — or candidates kept for their age — name.

If any endpoint cannot be described, nothing is removed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from infra.aws.endpoint_provider import OWNER_TAG


@dataclass(frozen=True)
class Garbage:
    """What :func:`collect` removes, and what it keeps because something uses it."""

    configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page[key])
    return items


def _owned(
    client: Any, items: list[dict[str, Any]], arn_key: str, endpoint: str
) -> list[dict[str, Any]]:
    owned = []
    for item in items:
        tags = client.list_tags(ResourceArn=item[arn_key])["Tags"]
        if {"Key": OWNER_TAG, "Value": endpoint} in tags:
            owned.append(item)
    return owned


def _old_enough(item: dict[str, Any], min_age_s: float, now: datetime.datetime) -> bool:
    created = item.get("CreationTime")
    if not isinstance(created, datetime.datetime):
        return min_age_s <= 0
    return (now - created).total_seconds() >= min_age_s


def find_garbage(
    sagemaker: Any,
    endpoint: str,
    *,
    min_age_s: float = 3600,
    now: datetime.datetime | None = None,
) -> Garbage:
    """The configurations and models of ``endpoint`` that no endpoint uses (see module)."""
    now = now or datetime.datetime.now(datetime.UTC)
    live_configs: set[str] = set()
    for summary in _pages(sagemaker, "list_endpoints", "Endpoints"):
        described = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
        live_configs.add(described["EndpointConfigName"])
        pending = described.get("PendingDeploymentSummary") or {}
        if pending.get("EndpointConfigName"):
            live_configs.add(pending["EndpointConfigName"])

    configs = _owned(
        sagemaker,
        _pages(sagemaker, "list_endpoint_configs", "EndpointConfigs", NameContains=endpoint),
        "EndpointConfigArn",
        endpoint,
    )
    removable = [
        c["EndpointConfigName"]
        for c in configs
        if c["EndpointConfigName"] not in live_configs and _old_enough(c, min_age_s, now)
    ]
    kept_configs = live_configs | ({c["EndpointConfigName"] for c in configs} - set(removable))
    kept_models: set[str] = set()
    for name in kept_configs:
        try:
            config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
        except sagemaker.exceptions.ClientError as exc:
            if "Could not find" in str(exc):  # deleted outside: it names nothing we can see
                continue
            raise
        for variant in [*config["ProductionVariants"], *config.get("ShadowProductionVariants", [])]:
            kept_models.add(variant["ModelName"])

    models = _owned(
        sagemaker,
        _pages(sagemaker, "list_models", "Models", NameContains=endpoint),
        "ModelArn",
        endpoint,
    )
    return Garbage(
        configs=sorted(removable),
        models=sorted(
            m["ModelName"]
            for m in models
            if m["ModelName"] not in kept_models and _old_enough(m, min_age_s, now)
        ),
        in_use=sorted(kept_configs & {c["EndpointConfigName"] for c in configs}),
    )


def collect(sagemaker: Any, garbage: Garbage) -> None:
    """Delete the configurations first (a model is unused only once no configuration names it),
    then the models."""
    for name in garbage.configs:
        sagemaker.delete_endpoint_config(EndpointConfigName=name)
    for name in garbage.models:
        sagemaker.delete_model(ModelName=name)
