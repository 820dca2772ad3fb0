"""The replacement table: complete for what the program declares, and right where it matters.

Coverage is checked against the offline plans of the repository's stacks and of
``tests/infra/stacks/Pulumi.options.yaml`` (the optional features the stacks leave off): every
resource type has a rule and every property the program sets has a verdict.

The verdicts below are the ones a reviewer acts on; each test cites where the provider
decides it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from infra.stack.plan import Plan
from infra.stack.replacements import RULES, Action, classify, rule_for, uncovered
from tests.infra.offline_plans import options_plan, stack_plans


def _plans() -> dict[str, Plan]:
    return {**stack_plans(), "options": options_plan()}


def _leaves(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for item in value:
            yield from _leaves(item, f"{path}[]")
    else:
        yield path


def test_every_declared_type_and_property_has_a_verdict() -> None:
    missing: dict[str, set[str]] = {}
    for plan in _plans().values():
        for resource in plan.resources:
            gaps = uncovered(resource.type, _leaves(resource.inputs))
            if gaps:
                missing.setdefault(resource.type, set()).update(gaps)
    assert not missing, (
        "add these to infra/stack/replacements.py, read from the provider's schema: "
        + "; ".join(f"{t}: {', '.join(sorted(p))}" for t, p in sorted(missing.items()))
    )


def test_the_options_stack_declares_what_the_stacks_leave_out() -> None:
    """Otherwise the coverage test above would miss those types."""
    stacks = {r.type for plan in stack_plans().values() for r in plan.resources}
    extra = {r.type for r in options_plan().resources} - stacks
    assert {
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "gcp:logging/metric:Metric",
        "gcp:monitoring/alertPolicy:AlertPolicy",
    } <= extra


def test_the_table_names_no_type_twice_and_cites_a_source() -> None:
    for token, rule in RULES.items():
        assert rule.source, token
        assert not set(rule.replace) & set(rule.update), token


def _node_pool(machine: str, accelerator: str) -> dict[str, Any]:
    return {
        "cluster": "staging",
        "nodeConfig": {
            "machineType": machine,
            "guestAccelerators": [{"count": 1, "type": accelerator}],
        },
    }


def test_a_gpu_type_change_replaces_the_node_pool_creating_the_new_one_first() -> None:
    """terraform-provider-google ``google/services/container/node_config.go``:
    ``guest_accelerator`` is ForceNew. The pool's name is Pulumi's auto-name (the program sets
    none), so the new pool is created before the old one is deleted."""
    before, after = _node_pool("g2-standard-8", "nvidia-l4"), _node_pool("a2-highgpu-1g", "a100")
    verdict = classify(
        "gcp:container/nodePool:NodePool",
        before,
        after,
        ["nodeConfig.machineType", "nodeConfig.guestAccelerators[0].type"],
    )
    assert verdict.action is Action.REPLACE
    assert verdict.replaced_by == ("nodeConfig.guestAccelerators[0].type",)
    assert not verdict.delete_first
    assert verdict.conflict is None


def test_a_machine_type_change_updates_the_node_pool_in_place_and_says_nodes_are_recreated() -> (
    None
):
    """terraform-provider-google ``node_config.go`` ``nodePoolNodeConfigUpdate``: machine type,
    disk size and type go through UpdateNodePool (GKE then recreates the nodes)."""
    verdict = classify(
        "gcp:container/nodePool:NodePool",
        _node_pool("g2-standard-8", "nvidia-l4"),
        _node_pool("g2-standard-16", "nvidia-l4"),
        ["nodeConfig.machineType"],
    )
    assert verdict.action is Action.UPDATE
    assert any("recreates every node" in note for note in verdict.notes)


def test_a_content_named_sagemaker_config_is_replaced_new_one_first() -> None:
    """terraform-provider-aws ``internal/service/sagemaker/endpoint_configuration.go``: every
    attribute but tags is ForceNew. The program names configurations by content and sets
    ``delete_before_replace=False``, which wins over the bridge's delete-first for fixed
    names (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``)."""
    before = {"name": "reranker-prod-e177182410", "productionVariants": [{"instanceType": "a"}]}
    after = {"name": "reranker-prod-0c9a8b7d6e", "productionVariants": [{"instanceType": "b"}]}
    verdict = classify(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        before,
        after,
        ["name", "productionVariants[0].instanceType"],
        delete_before_replace=False,
    )
    assert verdict.action is Action.REPLACE
    assert not verdict.delete_first


def test_a_fixed_name_makes_the_bridge_delete_first() -> None:
    """pulumi-terraform-bridge ``nameRequiresDeleteBeforeReplace``: a ``name`` the program set
    (pulumi-aws auto-names every input called ``name``) means the replacement has the same
    name, so the old endpoint goes first: an outage the reviewer must see."""
    before = {"name": "reranker-prod", "deploymentConfig": {"autoRollbackConfiguration": {}}}
    after = {
        "name": "reranker-prod",
        "deploymentConfig": {"autoRollbackConfiguration": {"alarms": [{"alarmName": "x"}]}},
    }
    verdict = classify(
        "aws:sagemaker/endpoint:Endpoint",
        before,
        after,
        ["deploymentConfig.autoRollbackConfiguration.alarms[0].alarmName"],
    )
    assert verdict.action is Action.REPLACE
    assert verdict.delete_first


def test_a_deployment_selector_change_deletes_the_named_deployment_first() -> None:
    """pulumi-kubernetes ``provider/pkg/provider/diff.go``: ``.spec.selector`` is forceNew for
    apps/v1 Deployments; ``provider.go`` Diff deletes first when the object keeps its fixed
    name and namespace."""
    before = {"metadata": {"name": "m", "namespace": "ns"}, "spec": {"selector": {"a": "1"}}}
    after = {"metadata": {"name": "m", "namespace": "ns"}, "spec": {"selector": {"a": "2"}}}
    verdict = classify(
        "kubernetes:apps/v1:Deployment", before, after, ["spec.selector.matchLabels.a"]
    )
    assert verdict.action is Action.REPLACE
    assert verdict.delete_first


def test_a_new_image_updates_the_deployment_in_place() -> None:
    verdict = classify(
        "kubernetes:apps/v1:Deployment",
        {},
        {},
        ["spec.template.spec.containers[0].image"],
    )
    assert verdict.action is Action.UPDATE
    assert verdict.unknown == ()


def test_a_policy_v1_disruption_budget_is_mutable() -> None:
    """pulumi-kubernetes ``diff.go`` lists ``.spec`` as forceNew for policy/v1beta1 only."""
    verdict = classify("kubernetes:policy/v1:PodDisruptionBudget", {}, {}, ["spec.maxUnavailable"])
    assert verdict.action is Action.UPDATE


def test_lifecycle_policies_are_always_deleted_first() -> None:
    """pulumi-aws ``provider/resource_overrides.go``: ``DeleteBeforeReplace`` for
    ``aws_ecr_lifecycle_policy`` (its id is the repository: a create then a delete would
    remove the new policy)."""
    verdict = classify("aws:ecr/lifecyclePolicy:LifecyclePolicy", {}, {}, ["policy"])
    assert verdict.action is Action.REPLACE
    assert verdict.delete_first


def test_a_same_name_replacement_that_cannot_be_created_first_is_a_conflict() -> None:
    """An Artifact Registry ``repositoryId`` is not auto-named: a ForceNew change that keeps it
    (``kmsKeyName``, terraform-provider-google
    ``resource_artifact_registry_repository.go``) would create a second repository with the
    same id first."""
    before = {"repositoryId": "serving", "kmsKeyName": "k1"}
    after = {"repositoryId": "serving", "kmsKeyName": "k2"}
    verdict = classify("gcp:artifactregistry/repository:Repository", before, after, ["kmsKeyName"])
    assert verdict.action is Action.REPLACE
    assert verdict.conflict is not None
    assert "serving" in verdict.conflict


@pytest.mark.parametrize(
    ("token", "path"),
    [
        ("aws:sagemaker/model:Model", "primaryContainer.image"),
        ("aws:eks/nodeGroup:NodeGroup", "instanceTypes[0]"),
        ("gcp:vertex/aiEndpoint:AiEndpoint", "network"),
        ("kubernetes:core/v1:Service", "spec.clusterIP"),
        ("pulumi:providers:kubernetes", "context"),
    ],
)
def test_force_new_properties_replace(token: str, path: str) -> None:
    rule = rule_for(token)
    assert rule is not None
    assert rule.verdict(path) is True


def test_an_unknown_property_is_reported_not_guessed() -> None:
    verdict = classify("aws:sagemaker/model:Model", {}, {}, ["somethingNew"])
    assert verdict.action is Action.UPDATE
    assert verdict.unknown == ("somethingNew",)
