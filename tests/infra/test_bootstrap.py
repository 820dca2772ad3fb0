"""``make bootstrap`` deploys the registries alone: its ``--target`` patterns select, in every
stack's plan, the registry components, their children and the project services, and nothing
that deploys an image.

Patterns are matched as Pulumi matches them (pulumi/pulumi ``pkg/resource/deploy/deployment.go``,
``UrnTargets.getMatcher``: ``**`` is any text, ``*`` any text without ``:``).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.aws.config import EcrRepositoryArgs
from infra.aws.ecr import EcrRepository
from infra.gcp.artifact_registry import ArtifactRegistry
from infra.gcp.config import artifact_registry_args_from_config
from infra.stack.diff import diff_plans, render_diff, to_json
from infra.stack.files import dump_document, load_document
from infra.stack.mocks import RecordingMocks
from infra.stack.plan import Plan, plan_stack, render_tree
from infra.validation import ConfigError, validate
from tests.infra.aws.conftest import declare
from tests.infra.offline_plans import ROOT, STACKS_DIR, stack_plans

REGISTRY_TYPES = {"ml-endpoints:aws:EcrRepository", "ml-endpoints:gcp:ArtifactRegistry"}
ECR_REPOSITORY = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
ECR_PULL_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
AR_REPOSITORY = "gcp:artifactregistry/repository:Repository"


def _patterns() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    block = re.search(r"^BOOTSTRAP_TARGETS := (.*?)(?<!\\)\n", makefile, re.S | re.M)
    assert block is not None, "Makefile: BOOTSTRAP_TARGETS"
    words = shlex.split(block.group(1).replace("\\\n", " "))
    return [words[i + 1] for i, word in enumerate(words) if word == "--target"]


def _matches(pattern: str, urn: str) -> bool:
    parts = ["[^:]*".join(re.escape(p) for p in seg.split("*")) for seg in pattern.split("**")]
    return re.match("^" + ".*".join(parts) + "$", urn) is not None


def test_bootstrap_selects_the_registries_and_nothing_that_deploys_an_image() -> None:
    patterns = _patterns()
    assert patterns
    for stack, plan in stack_plans().items():
        chosen = {r.urn for r in plan.resources if any(_matches(p, r.urn) for p in patterns)}
        registries = {r.urn for r in plan.resources if r.type in REGISTRY_TYPES}
        wanted = {
            r.urn
            for r in plan.resources
            if r.type in REGISTRY_TYPES
            or r.parent in registries
            or r.type == "gcp:projects/service:Service"
        }
        assert chosen == wanted, stack
        assert registries, f"{stack} declares no registry"
        assert not any("sagemaker" in urn or "vertex" in urn.lower() for urn in chosen - registries)


# ------------------------------------------------------------------ adopting a registry


def _ecr(**config: Any) -> None:
    declare(lambda: EcrRepository("serving", {"name": "team/serving", **config}))


def test_an_adopted_ecr_repository_is_imported_by_its_name(pulumi_mocks: RecordingMocks) -> None:
    """``adopt: true`` sets Pulumi's ``import`` resource option (pulumi.com docs, "Resource
    option: import": the ID is "the same as would be returned by the id property for any
    resource created by Pulumi") to the ECR repository's ID, its name: terraform-provider-aws
    ``internal/service/ecr/repository.go`` creates it with ``d.SetId(RepositoryName)`` and
    imports it with ``ImportStatePassthroughContext``; pulumi-aws ``ecr/repository``, "Import":
    "import ECR Repositories using the ``name``". Because that is the ID a created repository
    has too, the option may stay on (pulumi/pulumi ``developer-docs/architecture/import.md``:
    a resource already in the stack with the same ID "is treated like any other resource").
    The lifecycle and pull policies are written over whatever is there: never imported."""
    _ecr(adopt=True, pull_account_ids=["210987654321"])
    assert pulumi_mocks.one(ECR_REPOSITORY).import_id == "team/serving"
    others = [r for r in pulumi_mocks.resources if r.type != ECR_REPOSITORY]
    assert {r.type for r in others} >= {ECR_LIFECYCLE, ECR_PULL_POLICY}
    assert all(r.import_id is None for r in others)


def test_a_repository_not_adopted_is_created(pulumi_mocks: RecordingMocks) -> None:
    _ecr()
    assert pulumi_mocks.one(ECR_REPOSITORY).import_id is None


def test_an_adopted_ecr_repository_cannot_ask_for_force_delete_in_the_import() -> None:
    """ECR has no force-delete setting: terraform-provider-aws reads ``force_delete`` back from
    nothing (``resourceRepositoryRead`` never sets it), so the imported state lacks it and
    ``force_delete: true`` would be a difference, which fails the import (pulumi/pulumi
    ``import.md``: differences fail an update). Refused at the stack key instead."""
    with pytest.raises(ConfigError) as error:
        validate(
            EcrRepositoryArgs, {"name": "team/serving", "adopt": True, "force_delete": True}, "ecr"
        )
    assert error.value.key == "ecr.force_delete"
    assert "adopted repository is imported without force_delete" in error.value.message


@pytest.mark.parametrize(
    ("config", "import_id"),
    [
        (
            {"region": "us-central1", "repository_id": "serving"},
            "projects/ml-project/locations/us-central1/repositories/serving",
        ),
        (
            {"gcr_host": "eu.gcr.io"},
            "projects/ml-project/locations/europe/repositories/eu.gcr.io",
        ),
    ],
)
def test_an_adopted_artifact_registry_repository_is_imported_by_its_full_name(
    pulumi_mocks: RecordingMocks, config: dict[str, Any], import_id: str
) -> None:
    """pulumi-gcp ``artifactregistry/repository``, "Import": the first accepted form is
    ``projects/{{project}}/locations/{{location}}/repositories/{{repository_id}}``, which is also
    the ID terraform-provider-google gives the repository (``id_format`` of
    ``google_artifact_registry_repository``), so the option may stay on after the import. A
    ``gcr.io`` repository is named after its host, in the host's multi-region (Artifact
    Registry documentation, "gcr.io repositories")."""
    args = artifact_registry_args_from_config({"project": "ml-project", "adopt": True, **config})

    def program() -> Any:
        return ArtifactRegistry("serving", args).image_prefix

    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    assert pulumi_mocks.one(AR_REPOSITORY).import_id == import_id
    assert all(r.import_id is None for r in pulumi_mocks.resources if r.type != AR_REPOSITORY)


def test_an_adopting_stack_plans_and_diffs_an_import_not_a_create(tmp_path: Path) -> None:
    """The switch from the stack file to the engine: the offline plan records the import ID,
    the tree says so, and the diff marks it ``= import`` (as ``pulumi preview`` does) instead
    of ``+ create``, counted apart."""
    document = load_document(STACKS_DIR / "Pulumi.prod.yaml")
    config = document["config"]
    config["ml-endpoints:sagemaker"]["repository"]["adopt"] = True
    config["ml-endpoints:vertex"]["repository"]["adopt"] = True
    (tmp_path / "Pulumi.prod.yaml").write_text(dump_document(document))
    plan = plan_stack("prod", tmp_path)
    adopted = {r.type: r.import_id for r in plan.resources if r.import_id}
    ecr = config["ml-endpoints:sagemaker"]["repository"]["name"]
    vertex = config["ml-endpoints:vertex"]["repository"]
    assert adopted == {
        ECR_REPOSITORY: ecr,
        AR_REPOSITORY: f"projects/{vertex['project']}/locations/{vertex['region']}"
        f"/repositories/{vertex['repository_id']}",
    }
    assert Plan.from_json(plan.to_json()) == plan
    tree = render_tree(plan).splitlines()
    assert any(line.endswith(f"{ECR_REPOSITORY} serving  = import {ecr}") for line in tree)
    diff = diff_plans(Plan("prod", []), plan)
    text = render_diff(diff, "empty")
    assert f"= import  {ECR_REPOSITORY} serving  (adopts {ecr})" in text.splitlines()
    assert f"+ create  {ECR_REPOSITORY} serving" not in text
    assert f"{len(plan.resources) - 2} to create, 2 to import," in text.splitlines()[0]
    entries = json.loads(to_json(diff, "empty"))["resources"]
    assert {e["type"]: e["import_id"] for e in entries if e["action"] == "import"} == adopted


# ------------------------------------------------------------ the documented first deployment

STACKS_README = (ROOT / "stacks" / "README.md").read_text()


def _section(title: str) -> str:
    start = STACKS_README.index(f"### {title}")
    end = STACKS_README.find("\n### ", start + 4)
    return STACKS_README[start : end if end != -1 else None]


def _recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert found is not None, f"Makefile: no {target} target"
    return found.group(1)


def test_the_first_deployment_is_documented_registries_then_image_then_deploy() -> None:
    """stacks/README.md's "First deployment": registries (make bootstrap, targeted), then the
    image built once and copied by digest, then preflight and the full ``pulumi up``; each
    step names a command that exists."""
    steps = _section("First deployment")
    order = [
        "make bootstrap STACK=dev",
        "docker buildx build -f serving/Dockerfile --push",
        "ml-endpoints images --stack dev --copy-from",
        "ml-endpoints preflight --stack dev",
        "make up STACK=dev",
    ]
    places = [" ".join(steps.split()).find(command) for command in order]
    assert -1 not in places, dict(zip(order, places, strict=True))
    assert places == sorted(places)
    assert "pulumi up" in _recipe("bootstrap")
    assert "$(BOOTSTRAP_TARGETS)" in _recipe("bootstrap")
    assert "--target" not in _recipe("up")
    assert "ml-endpoints preflight" in _recipe("preflight")
    assert (ROOT / "serving" / "Dockerfile").exists()


def test_the_documented_cli_setup_matches_the_stack_files_and_the_makefile() -> None:
    """A stack initialised with another secrets provider than its file names could not read
    the file's ``secure:`` values (infra/secrets_provider.py); and the documented install is
    what ``make preview``/``make up`` install (the policy pack and preflight included)."""
    inits = re.findall(r"pulumi stack init (\w+) --secrets-provider '?([^'\s]+)'?", STACKS_README)
    assert inits
    for stack, provider in inits:
        document = load_document(STACKS_DIR / f"Pulumi.{stack}.yaml")
        assert provider == document["secretsprovider"], stack
    deploy = re.search(r"install -q -e '\.\[([^\]]+)\]'", _recipe("$(VENV)/.deploy"))
    assert deploy is not None
    assert f"pip install -e '.[{deploy.group(1)}]'" in STACKS_README


def test_make_preview_and_up_run_preflight_first() -> None:
    """Issue 15 item 2: preflight runs before preview and up locally too (make stops at the
    first failing line of a recipe, so a missing digest or artifact stops before Pulumi)."""
    for target in ("preview", "up"):
        lines = _recipe(target).splitlines()
        preflight = next(i for i, line in enumerate(lines) if "ml-endpoints preflight" in line)
        pulumi = next(i for i, line in enumerate(lines) if line.strip().startswith("pulumi "))
        assert preflight < pulumi, target
        assert "--stack $(STACK)" in lines[preflight]
