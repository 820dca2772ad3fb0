"""Issue 13 item 8: what production protects stays the same resource; a rename carries
``aliases``, so that it deletes nothing.

Pulumi knows a resource by its URN: its parents' types, its type and its name (pulumi/pulumi
``pkg/resource/deploy/deployment.go`` ``generateURN``; the root stack's type is left out).
Declared under a new name or another parent it is a new resource, and the one under the old
name is deleted, or, being protected, makes ``pulumi up`` fail. ``aliases`` names what a
resource was (``pulumi.Alias(name=OLD)``); a child whose name begins with its parent's name
inherits the parent's alias with that prefix replaced (pulumi/pulumi ``sdk/go/pulumi/alias.go``
``inheritedChildAlias``: "the resource has a name derived from the name of the parent, and the
parent name changed"), so renaming a component such as ``EcrRepository("serving")`` needs the
alias on the component only.

No protected resource has been renamed so far: prod's URNs are the same in every snapshot since
the endpoint became a dynamic resource (b897130), and that change of type, which no alias can
express, is the ``pulumi state delete`` path of stacks/README. :data:`PROTECTED` pins the
protected resources under the names prod was deployed with; a rename without an alias, or a
newly protected resource nobody pinned, fails here with what to do.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from infra.aws.ecr import EcrRepository
from infra.stack.mocks import RecordingMocks
from infra.stack.plan import Plan, PlannedResource, recorded_plan
from tests.infra.offline_plans import stack_plans

ECR = "ml-endpoints:aws:EcrRepository$aws:ecr/repository:Repository"
PROTECTED: dict[str, set[tuple[str, str]]] = {
    "prod": {
        (ECR, "serving"),
        ("ml-endpoints:aws:EksCluster$aws:eks/cluster:Cluster", "cluster"),
        (
            "ml-endpoints:aws:SageMakerEndpoint$"
            "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment",
            "sagemaker",
        ),
    },
}
"""Stack -> (URN type: parents' types and its own, name) of each resource its production
policy protects, as deployed."""


def urn_type(resource: PlannedResource, plan: Plan) -> str:
    """The type part of the URN the engine gives ``resource``: every ancestor's type, then its
    own (``A$B$type``; ``generateURN`` prefixes the parent's qualified type). Built from the
    parent links, not read from the recorded URN: Pulumi's mocks (``sdk/python/lib/pulumi/
    runtime/mocks.py`` ``make_urn``) keep only the immediate parent's type."""
    parent = next((r for r in plan.resources if r.urn == resource.parent), None)
    return resource.type if parent is None else f"{urn_type(parent, plan)}${resource.type}"


def known_as(resource: PlannedResource, plan: Plan) -> set[str]:
    """The names the engine matches ``resource`` with: its own, its aliases, and the names it
    inherits from its ancestors' aliases when its name begins with its parent's."""
    names = {resource.name, *resource.aliases}
    parent = next((r for r in plan.resources if r.urn == resource.parent), None)
    if parent is not None and resource.name.startswith(parent.name):
        suffix = resource.name[len(parent.name) :]
        names |= {former + suffix for former in known_as(parent, plan) - {parent.name}}
    return names


def unaliased(pinned: set[tuple[str, str]], plan: Plan) -> list[str]:
    """What is wrong with ``plan``'s protected resources against ``pinned``, one line each."""
    protected = [r for r in plan.resources if r.protect]
    answers = {(urn_type(r, plan), name): r for r in protected for name in known_as(r, plan)}
    problems = [
        f"{plan.stack} no longer protects {type_} {name!r}: if it was renamed, declare "
        f"aliases=[pulumi.Alias(name={name!r})] on it (or on the parent whose name it begins "
        "with), else Pulumi deletes it, and protect makes pulumi up fail; if it is to go, "
        "unprotect it in one run and remove it in the next"
        for type_, name in sorted(pinned - set(answers))
    ]
    problems += [
        f"{plan.stack} protects {urn_type(r, plan)} {r.name!r}, which PROTECTED does not pin: "
        "add it"
        for r in protected
        if not {(urn_type(r, plan), name) for name in known_as(r, plan)} & pinned
    ]
    return problems


@pytest.mark.parametrize("stack", sorted(PROTECTED))
def test_protected_resources_keep_their_names_or_carry_aliases(stack: str) -> None:
    assert unaliased(PROTECTED[stack], stack_plans()[stack]) == []


def _renamed_repository(mocks: RecordingMocks, **options: Any) -> Plan:
    """prod's repository component declared as ``images`` instead of ``serving``, with the
    program's resource ``options``, through Pulumi's SDK under the mocks."""

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[str]:
        repository = EcrRepository(
            "images",
            {"name": "ml-endpoints/serving", "protect": True},
            pulumi.ResourceOptions(**options),
        )
        return repository.repository_url

    program()
    return recorded_plan("prod", mocks)


def test_a_component_alias_carries_its_protected_child_through_a_rename(
    pulumi_mocks: RecordingMocks,
) -> None:
    """The SDK sends the alias as a spec (``pulumi.Alias(name="serving")``); the mocks record
    it and the child repository, named after its component, inherits it: the rename deletes
    nothing."""
    plan = _renamed_repository(pulumi_mocks, aliases=[pulumi.Alias(name="serving")])
    [repository] = [r for r in plan.resources if urn_type(r, plan) == ECR]
    [component] = [r for r in plan.resources if r.urn == repository.parent]
    assert component.aliases == ("serving",)
    assert repository.aliases == ()
    assert known_as(repository, plan) == {"images", "serving"}
    assert unaliased({(ECR, "serving")}, plan) == []


def test_a_rename_without_an_alias_is_reported(pulumi_mocks: RecordingMocks) -> None:
    plan = _renamed_repository(pulumi_mocks)
    assert unaliased({(ECR, "serving")}, plan) == [
        f"prod no longer protects {ECR} 'serving': if it was renamed, declare "
        "aliases=[pulumi.Alias(name='serving')] on it (or on the parent whose name it begins "
        "with), else Pulumi deletes it, and protect makes pulumi up fail; if it is to go, "
        "unprotect it in one run and remove it in the next",
        f"prod protects {ECR} 'images', which PROTECTED does not pin: add it",
    ]


def test_a_move_under_another_parent_is_reported(pulumi_mocks: RecordingMocks) -> None:
    """The same names under a new parent component are a new URN (``generateURN``): Pulumi
    would create the repository anew and delete the deployed one, so the pin must not match."""

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[str]:
        registries = pulumi.ComponentResource("ml-endpoints:aws:Registries", "registries")
        repository = EcrRepository(
            "serving",
            {"name": "ml-endpoints/serving", "protect": True},
            pulumi.ResourceOptions(parent=registries),
        )
        return repository.repository_url

    program()
    plan = recorded_plan("prod", pulumi_mocks)
    problems = unaliased({(ECR, "serving")}, plan)
    assert problems[0].startswith(f"prod no longer protects {ECR} 'serving'")
    assert problems[1].startswith("prod protects ml-endpoints:aws:Registries$" + ECR)
