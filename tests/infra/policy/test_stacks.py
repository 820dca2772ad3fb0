"""The policy pack on the offline plans of the repository's stacks, and ``ml-endpoints
validate``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.policies import POLICIES, Resource, StackContext, run_checks
from infra.stack.config import load_stack_file
from serving.cli import main
from tests.infra.offline_plans import (
    GCR_STACK,
    STACKS,
    STACKS_DIR,
    TEST_STACKS_DIR,
    gcr_plan,
    stack_plans,
)


def resources(stack: str) -> list[Resource]:
    return [Resource(r.type, r.name, r.urn, r.inputs) for r in stack_plans()[stack].resources]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_every_policy(stack: str) -> None:
    policy = load_stack_file(stack, STACKS_DIR).policy
    context = StackContext(stack, policy.production, frozenset(policy.allow_public_exposure))
    assert run_checks(resources(stack), context) == []


def test_dev_would_not_pass_as_production() -> None:
    violations = run_checks(resources("dev"), StackContext("dev", production=True))
    assert {v.policy for v in violations} == {"production-replicas"}
    # dev's release is pinned too; only its sizes are below production's.
    assert all("production needs at least 2" in v.message for v in violations)


def test_prod_plan_exercises_every_policy_subject() -> None:
    types = {r.type for r in resources("prod")}
    assert {
        "aws:ecr/repository:Repository",
        "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:iam/rolePolicy:RolePolicy",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "pulumi-python:dynamic/ml-endpoints/gcp:VertexDeployment",
    } <= types


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", tmp_path)
    strict = (
        (STACKS_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace("production: false", "production: true")
    )
    (tmp_path / "Pulumi.strict.yaml").write_text(strict)
    code = main(["validate", "--stacks-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"ok   dev (non-production): {len(POLICIES)} policies" in out
    assert "FAIL strict production-replicas: " in out
    assert "minCapacity" not in out  # dev has no SageMaker autoscaling


def test_the_gcr_stack_passes_and_its_repository_is_checked_like_any_other() -> None:
    """The gcr.io repository (``eu.gcr.io``) of ``tests/infra/stacks/Pulumi.gcr.yaml`` passes
    the pack; the same plan with its tags made mutable or a public reader does not."""
    policy = load_stack_file(GCR_STACK, TEST_STACKS_DIR).policy
    context = StackContext(GCR_STACK, policy.production, frozenset(policy.allow_public_exposure))
    planned = [Resource(r.type, r.name, r.urn, r.inputs) for r in gcr_plan().resources]
    assert run_checks(planned, context) == []

    def changed(type_: str, **props: object) -> list[Resource]:
        return [
            Resource(r.type, r.name, r.urn, {**r.props, **props}) if r.type == type_ else r
            for r in planned
        ]

    mutable = changed(
        "gcp:artifactregistry/repository:Repository", dockerConfig={"immutableTags": False}
    )
    public = changed(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", member="allUsers"
    )
    assert [(v.policy, v.message) for v in run_checks(mutable, context)] == [
        (
            "artifact-registry-scan-and-immutable",
            "repository eu.gcr.io: dockerConfig.immutableTags is not on",
        )
    ]
    assert [v.policy for v in run_checks(public, context)] == ["no-public-exposure"]
