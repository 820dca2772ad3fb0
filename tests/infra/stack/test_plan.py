"""The offline plan (the real program under Pulumi's mocks), its snapshots, and the diff
against a git revision.

Snapshots: ``tests/infra/snapshots/<stack>.json`` hold each stack's plan, so a pull request
shows its infrastructure change as a file diff. When a plan changes on purpose, regenerate them
with ``make snapshots`` and commit the result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.stack import wait_for_rpcs

from infra.stack.diff import diff_plans, render_diff, traffic_changes
from infra.stack.files import dump_document, load_document
from infra.stack.mocks import RecordingMocks, mocked
from infra.stack.plan import Plan, PlannedResource, plan_stack, render_tree, traffic
from infra.stack.promotion import promote, write
from serving.cli import main
from tests.infra.offline_plans import GCR_STACK, ROOT, STACKS, STACKS_DIR, gcr_plan, stack_plans

SNAPSHOTS = Path(__file__).parents[1] / "snapshots"
UPDATE = os.environ.get("ML_ENDPOINTS_UPDATE_SNAPSHOTS") == "1"


@pytest.mark.parametrize("stack", STACKS)
def test_plan_matches_snapshot(stack: str) -> None:
    snapshot = SNAPSHOTS / f"{stack}.json"
    current = stack_plans()[stack].to_json()
    if UPDATE:
        snapshot.write_text(current)
    assert snapshot.exists(), "no snapshot: run `make snapshots`"
    assert current == snapshot.read_text(), (
        f"the plan of {stack} changed; if intended, regenerate the snapshots with "
        "`make snapshots` and commit them"
    )


def test_gcr_stack_plan_matches_snapshot() -> None:
    """The gcr.io test stack (``tests/infra/stacks/Pulumi.gcr.yaml``) is snapshotted like the
    repository's stacks, so a change to how a gcr.io repository is declared shows as a diff."""
    snapshot = SNAPSHOTS / f"{GCR_STACK}.json"
    current = gcr_plan().to_json()
    if UPDATE:
        snapshot.write_text(current)
    assert snapshot.exists(), "no snapshot: run `make snapshots`"
    assert current == snapshot.read_text(), (
        "the plan of the gcr.io test stack changed; if intended, regenerate the snapshots "
        "with `make snapshots` and commit them"
    )


def test_the_gcr_stack_declares_the_host_repository_and_deploys_from_it() -> None:
    """Artifact Registry documentation, "gcr.io repositories": ``eu.gcr.io`` is served by the
    DOCKER repository ``eu.gcr.io`` in ``europe``; Vertex AI and Kubernetes pull
    ``eu.gcr.io/PROJECT/IMAGE`` by the release's digest."""
    plan = gcr_plan()
    [repository] = [
        r for r in plan.resources if r.type == "gcp:artifactregistry/repository:Repository"
    ]
    assert repository.inputs["repositoryId"] == "eu.gcr.io"
    assert repository.inputs["location"] == "europe"
    assert repository.inputs["format"] == "DOCKER"
    assert repository.inputs["kmsKeyName"].startswith("projects/acme-ml-eu/locations/europe/")
    [reader] = [
        r
        for r in plan.resources
        if r.type == "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
    ]
    assert reader.inputs["repository"] == "eu.gcr.io"
    assert reader.inputs["location"] == "europe"
    assert reader.inputs["role"] == "roles/artifactregistry.reader"
    digest = "sha256:5e0c8f1a2b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
    [vertex] = [r for r in plan.resources if r.type.endswith(":VertexDeployment")]
    assert [v["image"] for v in vertex.inputs["variants"]] == [
        f"eu.gcr.io/acme-ml-eu/ml-endpoints@{digest}"
    ]
    [pods] = [r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment"]
    [container] = pods.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"eu.gcr.io/acme-ml-eu/ml-endpoints:2.1.0@{digest}"


REPOSITORY_IMPORT_ID = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/repositories/(?P<repository_id>[^/]+)$"
)
"""The first import ID form of terraform-provider-google's ``resourceArtifactRegistryRepository
Import`` (``google/services/artifactregistry/resource_artifact_registry_repository.go``), which
pulumi-gcp's ``gcp:artifactregistry/repository:Repository`` takes as ``pulumi import``'s ID.
``--parent NAME=URN`` is the ``pulumi import`` CLI reference's form for the parent component."""
_README_IMPORT = re.compile(
    r"pulumi import (?P<type>\S+) (?P<name>\S+) \\\n\s+(?P<id>\S+) \\\n"
    r"\s+--parent '(?P<parent>[^']+)' \\\n\s+--stack STACK"
)


def test_the_readme_adopts_the_gcr_repository_the_gcr_stack_declares() -> None:
    """README, "Adopting an existing gcr.io repository": the ``pulumi import`` command must name
    the Repository resource the gcr.io test stack declares (type token and name), with an ID the
    provider's importer reads back as that repository's project, location and id, under the
    component's URN as the engine makes it. The engine leaves the root stack's type out of a
    top-level resource's URN (pulumi/pulumi ``pkg/resource/deploy/deployment.go``
    ``generateURN``: "don't use the root stack type"), which Pulumi's Python mocks keep
    (``pulumi:pulumi:Stack$...`` in the plan), so a URN copied from the plan would be wrong."""
    found = _README_IMPORT.search((ROOT / "README.md").read_text())
    assert found is not None, "README: no pulumi import command for the gcr.io repository"
    plan = gcr_plan()
    [repository] = [
        r for r in plan.resources if r.type == "gcp:artifactregistry/repository:Repository"
    ]
    assert (found["type"], found["name"]) == (repository.type, repository.name)
    parts = REPOSITORY_IMPORT_ID.match(found["id"])
    assert parts is not None, found["id"]
    inputs = repository.inputs
    assert parts.groupdict() == {
        "project": inputs["project"],
        "location": inputs["location"],
        "repository_id": inputs["repositoryId"],
    }
    [component] = [r for r in plan.resources if r.urn == repository.parent]
    [project] = re.findall(r"^name: (\S+)$", (ROOT / "Pulumi.yaml").read_text(), re.M)
    engine_urn = component.urn.replace("pulumi:pulumi:Stack$", "").replace(
        f"urn:pulumi:{GCR_STACK}::", "urn:pulumi:STACK::"
    )
    assert engine_urn == f"urn:pulumi:STACK::{project}::{component.type}::{component.name}"
    assert found["parent"] == f"parent={engine_urn}"


def test_a_plan_validates_the_stack_once() -> None:
    """The stack file is validated before the program runs, and the program declares that
    validated stack (it used to validate it again from Pulumi's config). In a fresh process,
    as every plan runs: Pulumi's runtime state is global."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from infra.stack.config import StackConfig\n"
        "from infra.stack.plan import run_offline\n"
        "validate, calls = StackConfig.model_validate.__func__, []\n"
        "def counting(cls, data, **kwargs):\n"
        "    calls.append(1)\n"
        "    return validate(cls, data, **kwargs)\n"
        "StackConfig.model_validate = classmethod(counting)\n"
        "sys.stdout.write(run_offline('dev', Path(sys.argv[1])).to_json())\n"
        "sys.stderr.write(f'validations={len(calls)}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(STACKS_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("validations=1")
    assert done.stdout == stack_plans()["dev"].to_json()


def test_plan_declares_every_enabled_target() -> None:
    plans = stack_plans()
    components = {
        stack: sorted({r.type for r in plan.resources if r.type.startswith("ml-endpoints:")})
        for stack, plan in plans.items()
    }
    assert components["dev"] == [
        "ml-endpoints:aws:EcrRepository",
        "ml-endpoints:aws:SageMakerEndpoint",
        "ml-endpoints:k8s:ExistingCluster",
        "ml-endpoints:k8s:ModelDeployment",
    ]
    assert "ml-endpoints:gcp:VertexEndpoint" in components["staging"]
    assert "ml-endpoints:gcp:GkeCluster" in components["staging"]
    assert "ml-endpoints:aws:EksCluster" in components["prod"]


def test_model_resources_run_on_the_cluster_provider() -> None:
    plan = stack_plans()["prod"]
    provider = next(r for r in plan.resources if r.type == "pulumi:providers:kubernetes")
    deployments = [r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment"]
    assert {d.provider for d in deployments} == {provider.urn}
    assert provider.inputs["kubeconfig"] == "[secret]"


def test_tree_and_traffic() -> None:
    plan = stack_plans()["prod"]
    tree = render_tree(plan, "stacks/Pulumi.prod.yaml")
    assert tree.startswith(
        f"stack prod: {len(plan.resources)} resources (stacks/Pulumi.prod.yaml)\n"
    )
    assert "|-- ml-endpoints:aws:SageMakerEndpoint sagemaker\n" in tree
    node = tree[tree.index("pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment") :]
    for shown in (
        "sagemaker",
        "endpoint_name=reranker-prod",
        "config.ProductionVariants.VariantName=champion,challenger",
        "config.ProductionVariants.InstanceType=ml.c5.2xlarge,ml.c5.2xlarge",
        "config.ProductionVariants.InitialInstanceCount=2,2",
        '"challenger": 0, "champion": 100}',
    ):
        assert shown in node
    assert all(len(line) <= 100 for line in tree.splitlines())  # long lines wrap
    assert "`-- kubernetes:policy/v1:PodDisruptionBudget kubernetes-champion" in tree
    assert traffic(plan) == {
        "sagemaker": {"champion": 100.0, "challenger": 0.0},
        "vertex": {"champion": 100.0, "challenger": 0.0},
        "kubernetes": {"champion": 100.0, "challenger": 0.0},
    }


def test_plan_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["plan", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert out == render_tree(stack_plans()["dev"], "stacks/Pulumi.dev.yaml") + (
        "traffic dev/sagemaker: champion 50%, challenger 50%\n"
        "traffic dev/kubernetes: champion 50%, challenger 50%\n"
    )


def test_plan_json_round_trips() -> None:
    plan = stack_plans()["staging"]
    assert Plan.from_json(plan.to_json()) == plan
    assert json.loads(plan.to_json())["resources"][0].keys() == {
        "urn",
        "type",
        "name",
        "parent",
        "provider",
        "inputs",
        "dependencies",
        "delete_before_replace",
    }
    assert json.loads(plan.to_json())["warnings"] == plan.warnings


def test_invalid_stack_fails_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text().replace("weight: 50", "weight: 40", 1)
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    assert main(["plan", "--stack", "dev", "--stacks-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ml-endpoints plan: invalid configuration: {tmp_path}/Pulumi.dev.yaml: ")
    assert (
        "ml-endpoints:release.variants: weights are percent and must add up to 100, not 90" in err
    )


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "--stack", "prod"],
        ["validate", "--stack", "prod"],
        ["promote", "staging", "prod"],
        ["diff", "--stack", "prod", "--base", "HEAD"],
    ],
)
def test_a_yaml_syntax_error_is_one_file_line_message_for_every_command(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(STACKS_DIR, tmp_path, dirs_exist_ok=True)
    prod = tmp_path / "Pulumi.prod.yaml"
    lines = prod.read_text().splitlines()
    number = lines.index("  ml-endpoints:policy:")
    lines[number] = "  ml-endpoints:policy: [oops"
    prod.write_text("\n".join(lines) + "\n")
    assert main([*command, "--stacks-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ml-endpoints {command[0]}: invalid configuration: {prod}:{number + 2}:15: not valid "
        "YAML: expected ',' or ']', but got ':' (while parsing a flow sequence)\n"
    )


@pytest.mark.parametrize(
    ("command", "file"),
    [
        (["plan", "--stack", "dev"], "Pulumi.dev.yaml"),
        (["validate", "--stack", "dev"], "Pulumi.dev.yaml"),
        (["validate"], "Pulumi.*.yaml"),
        (["promote", "staging", "prod"], "Pulumi.staging.yaml"),
        (["diff", "--stack", "dev", "--base", "HEAD"], "Pulumi.dev.yaml"),
    ],
)
def test_without_stack_files_every_command_names_the_missing_file(
    command: list[str], file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run outside the checkout (the stacks directory is relative): one line naming the file,
    exit 2, the same for each command; diff used to end in git's FileNotFoundError traceback
    and validate in ThreadPoolExecutor's "max_workers must be greater than 0"."""
    missing = tmp_path / "stacks"
    assert main([*command, "--stacks-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ml-endpoints {command[0]}: invalid configuration: {missing}/{file}: ")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_diff_of_synthetic_plans() -> None:
    def route(weights: dict[str, int]) -> PlannedResource:
        refs = [{"name": f"r-{v}", "weight": w} for v, w in weights.items()]
        return PlannedResource(
            urn="urn:route",
            type="kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
            name="route",
            parent=None,
            provider=None,
            inputs={"spec": {"rules": [{"backendRefs": refs}]}},
        )

    gone = PlannedResource("urn:old", "aws:iam/role:Role", "old", None, None, {})
    base = Plan("prod", [route({"champion": 100, "challenger": 0}), gone])
    head = Plan("prod", [route({"champion": 90, "challenger": 10})])
    diff = diff_plans(base, head)
    assert [r.name for r in diff.removed] == ["old"]
    assert not diff.added
    assert diff.changed[0].changes == {
        "spec.rules[0].backendRefs[0].weight": (100, 90),
        "spec.rules[0].backendRefs[1].weight": (0, 10),
    }
    assert diff.traffic == [
        "prod/kubernetes r-challenger weight 0 -> 10%",
        "prod/kubernetes r-champion weight 100 -> 90%",
    ]
    assert traffic_changes("dev", {"vertex": {"a": 100.0}}, {}) == [
        "dev/vertex a weight 100 -> absent"
    ]


def test_diff_against_a_git_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A promotion in a pull request, as reviewers see it: a repository whose base commit has
    the stack files (and no program of its own: today's program plans both sides)."""
    shutil.copytree(STACKS_DIR, tmp_path / "stacks")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("add", "stacks")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    write(promote("staging", "prod", tmp_path / "stacks"))
    stacks = str(tmp_path / "stacks")
    assert main(["diff", "--stack", "prod", "--base", "HEAD", "--stacks-dir", stacks]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stack prod against HEAD: 0 to create, ")
    assert "~ update  pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment sagemaker\n" in out
    assert "    weights.champion: 100 -> 90\n" in out
    assert "~ update  kubernetes:gateway.networking.k8s.io/v1:HTTPRoute" in out
    as_json = ["diff", "--stack", "prod", "--base", "HEAD", "--stacks-dir", stacks, "--json"]
    assert main(as_json) == 0
    document = json.loads(capsys.readouterr().out)
    sagemaker = next(r for r in document["resources"] if r["name"] == "sagemaker")
    assert sagemaker["action"] == "update"
    assert sagemaker["changes"]["weights.champion"] == {"before": 100, "after": 90}
    assert out.endswith(
        "traffic:\n"
        "  prod/kubernetes challenger weight 0 -> 10%\n"
        "  prod/kubernetes champion weight 100 -> 90%\n"
        "  prod/sagemaker challenger weight 0 -> 10%\n"
        "  prod/sagemaker champion weight 100 -> 90%\n"
        "  prod/vertex challenger weight 0 -> 10%\n"
        "  prod/vertex champion weight 100 -> 90%\n"
    )
    assert main(["diff", "--stack", "prod", "--base", "nope", "--stacks-dir", stacks]) == 2
    assert "git archive nope" in capsys.readouterr().err


def test_encrypted_values_never_reach_the_plan(tmp_path: Path) -> None:
    document = load_document(STACKS_DIR / "Pulumi.dev.yaml")
    document["config"]["ml-endpoints:kubernetes"]["env"] = {"API_TOKEN": {"secure": "v1:abc="}}
    (tmp_path / "Pulumi.dev.yaml").write_text(dump_document(document))
    plan = plan_stack("dev", tmp_path)
    text = plan.to_json()
    assert "v1:abc=" not in text
    (secret,) = (r for r in plan.resources if r.type == "kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == "[secret]"
    env = [
        e
        for r in plan.resources
        if r.type == "kubernetes:apps/v1:Deployment"
        for e in r.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    ]
    references = [e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == "API_TOKEN"]
    assert len(references) == 2  # each variant's pods read the one Secret
    for reference in references:
        assert reference["key"] == "API_TOKEN"
        assert reference["name"].startswith(secret.name + "-")  # named by pulumi-kubernetes
    assert json.loads(text)["stack"] == "dev"


def _resource(type_: str, name: str, inputs: dict[str, Any], **extra: Any) -> PlannedResource:
    return PlannedResource(f"urn:{name}", type_, name, None, None, inputs, **extra)


def test_every_change_is_marked_as_the_engine_will_carry_it_out() -> None:
    """create, update, replace (deleting first or not) and delete; the Deployment's selector is
    immutable (pulumi-kubernetes diff.go) and its fixed name makes it go first."""
    deployment = "kubernetes:apps/v1:Deployment"
    meta = {"name": "m", "namespace": "ns"}
    base = Plan(
        "prod",
        [
            _resource(deployment, "a", {"metadata": meta, "spec": {"selector": {"v": "1"}}}),
            _resource(deployment, "b", {"metadata": meta, "spec": {"replicas": 1}}),
            _resource("aws:iam/role:Role", "gone", {}),
        ],
    )
    head = Plan(
        "prod",
        [
            _resource(deployment, "a", {"metadata": meta, "spec": {"selector": {"v": "2"}}}),
            _resource(deployment, "b", {"metadata": meta, "spec": {"replicas": 2}}),
            _resource("aws:iam/role:Role", "new", {}),
        ],
        warnings=["GkeCluster cluster: a warning the reviewer must read"],
    )
    text = render_diff(diff_plans(base, head), "main")
    assert text.splitlines()[:5] == [
        "stack prod against main: 1 to create, 1 to update, 1 to replace (1 deleting first), "
        "1 to delete",
        "+ create  aws:iam/role:Role new",
        "+- replace kubernetes:apps/v1:Deployment a  (deletes the old one first)",
        "    spec.selector.v: 1 -> 2  (forces replacement)",
        "~ update  kubernetes:apps/v1:Deployment b",
    ]
    assert "- delete  aws:iam/role:Role gone" in text
    assert "warnings:\n  GkeCluster cluster: a warning the reviewer must read\n" in text


def test_values_a_reviewer_checks_are_never_cut() -> None:
    old, new = "sha256:" + "9f2c" * 16, "sha256:" + "3b8e" * 16
    model = "aws:sagemaker/model:Model"
    base = Plan("prod", [_resource(model, "m", {"primaryContainer": {"image": f"r@{old}"}})])
    head = Plan("prod", [_resource(model, "m", {"primaryContainer": {"image": f"r@{new}"}})])
    text = render_diff(diff_plans(base, head), "main")
    assert old in text
    assert new in text
    assert "..." not in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_the_plan_shows_component_warnings() -> None:
    staging = stack_plans()["staging"]
    assert any(w.startswith("GkeCluster cluster:") for w in staging.warnings)
    assert "\nwarnings:\n  GkeCluster cluster:" in render_tree(staging)


def test_the_plan_records_the_delete_before_replace_option() -> None:
    """None where the program sets no option, its value where it does: the option wins over
    the provider's choice (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``)."""
    mocks = RecordingMocks()
    with mocked(mocks) as loop:

        async def program() -> None:
            pulumi.CustomResource("test:index:Thing", "unset", {})
            pulumi.CustomResource(
                "test:index:Thing", "kept", {}, pulumi.ResourceOptions(delete_before_replace=False)
            )
            await wait_for_rpcs()

        loop.run_until_complete(program())
    options = {r.name: r.delete_before_replace for r in mocks.resources}
    assert options == {"unset": None, "kept": False}
