"""Issue 15 item 4: a value set with ``pulumi config set --secret --path`` stays a secret from the
stack file to every resource input, the state, ``plan``, ``diff`` and the PR comment.

The program runs as under ``pulumi up`` (:func:`infra.stack.program.main` reading config the
way the engine hands it over: decrypted, secret per top-level key) on the prod stack with a
token in the SageMaker, Vertex AI and Kubernetes environments. What Pulumi sees is checked in
wire form: a secret Output travels wrapped in Pulumi's secret signature (pulumi/pulumi
``sdk/python/lib/pulumi/runtime/rpc.py`` ``_special_secret_sig``), and the engine encrypts in
state and masks in previews exactly what is wrapped. Dynamic providers do not accept secrets
(``sdk/python/lib/pulumi/dynamic/__main__.py`` Configure: ``acceptSecrets: False``), so the
engine marks their outputs secret by the name of a secret input (pulumi/pulumi
``sdk/go/common/resource/plugin/provider_plugin.go`` ``annotateSecrets``: objects recursively,
any other value whole); :func:`engine_state` models that for the state check.

``test_plain_get_object_would_leak`` runs the same checks on the program with the marking
taken out (``Config.get_object`` values used as they come): they must fail.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest
from ruamel.yaml import YAML

from infra.stack import program
from infra.stack.config import load_stack
from infra.stack.diff import diff_plans, render_diff, to_json
from infra.stack.files import dump_document, load_document, plain_config
from infra.stack.mocks import RecordingMocks, computed_outputs
from infra.stack.plan import recorded_plan, render_tree
from tests.infra.offline_plans import STACKS_DIR

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270"
TOKEN = "tok-3f9a1c77e2d4b8aa"
ROTATED = "tok-8b21aa90c5e7f013"
ENV_KEYS = {
    "ml-endpoints:sagemaker": "environment",
    "ml-endpoints:vertex": "env",
    "ml-endpoints:kubernetes": "env",
}
SAGEMAKER = "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment"
VERTEX = "pulumi-python:dynamic/ml-endpoints/gcp:VertexDeployment"


def stack_text(ciphertext: str) -> str:
    """The prod stack with ``API_TOKEN`` encrypted in each target's environment."""
    document = load_document(STACKS_DIR / "Pulumi.prod.yaml")
    for key, env in ENV_KEYS.items():
        document["config"][key][env] = {"API_TOKEN": {"secure": ciphertext}, "LOG_LEVEL": "info"}
    return dump_document(document)


def decrypted(text: str, token: str) -> dict[str, Any]:
    """The stack's config as the engine hands it to the program: decrypted."""
    config = copy.deepcopy(plain_config(load_document_text(text)))
    for key, env in ENV_KEYS.items():
        config[key][env]["API_TOKEN"] = token
    return config


def load_document_text(text: str) -> Any:
    return YAML().load(text)  # round-trip, as infra.stack.files reads stack files


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory whose ``stacks/`` holds the test stack (the program reads it)."""
    shutil.copytree(STACKS_DIR / "samples", tmp_path / "stacks" / "samples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_up(project: Path, token: str, ciphertext: str = "v1:AAAAbbbbCCCC") -> None:
    """``pulumi up`` of the test stack holding ``token`` encrypted as ``ciphertext``."""
    text = stack_text(ciphertext)
    (project / "stacks" / "Pulumi.test.yaml").write_text(text)
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in decrypted(text, token).items()},
        list(ENV_KEYS),
    )
    pulumi.runtime.test(program.main)()  # type: ignore[no-untyped-call]


def outside_secrets(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every leaf not inside one of Pulumi's secret wrappers."""
    if isinstance(value, Mapping):
        if SECRET_SIG in value:
            return
        for key, item in value.items():
            yield from outside_secrets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from outside_secrets(item, f"{path}[{index}]")
    else:
        yield path, value


def engine_state(outs: Mapping[str, Any], ins: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs of a provider that does not accept secrets as the engine stores them
    (provider_plugin.go ``annotateSecrets``)."""
    state = dict(outs)
    for key, given in ins.items():
        if key not in state:
            continue
        if (
            isinstance(state[key], Mapping)
            and isinstance(given, Mapping)
            and SECRET_SIG not in given
        ):
            state[key] = engine_state(state[key], given)
        elif _contains_secret(given):
            state[key] = {SECRET_SIG: SECRET_VALUE_SIG, "value": state[key]}
    return state


def _contains_secret(value: Any) -> bool:
    if isinstance(value, Mapping):
        return SECRET_SIG in value or any(_contains_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_secret(v) for v in value)
    return False


def leaks(mocks: RecordingMocks, token: str) -> list[str]:
    """Where ``token`` is visible outside a secret: inputs as sent, inputs as the mocks see
    them, and the state the mocks return."""
    found = []
    for resource in mocks.resources:
        where = {
            "wire": resource.wire,
            "inputs": resource.inputs,
            "state": computed_outputs(resource.type, resource.name, resource.inputs),
        }
        for view, value in where.items():
            found += [
                f"{resource.type} {resource.name} {view}{path}"
                for path, leaf in outside_secrets(value)
                if isinstance(leaf, str) and token in leaf
            ]
    return found


def secret_leaf(value: Any) -> Any:
    assert isinstance(value, Mapping), value
    assert value.get(SECRET_SIG) == SECRET_VALUE_SIG, value
    return value["value"]


def test_the_token_reaches_every_target_as_a_secret(
    pulumi_mocks: RecordingMocks, project: Path
) -> None:
    run_up(project, TOKEN)
    assert leaks(pulumi_mocks, TOKEN) == []

    (sagemaker,) = pulumi_mocks.of_type(SAGEMAKER)
    for request in sagemaker.wire["models"].values():
        environment = request["PrimaryContainer"]["Environment"]
        assert secret_leaf(environment["API_TOKEN"]) == TOKEN
        assert environment["LOG_LEVEL"] == "info"  # only the secret is wrapped
    (vertex,) = pulumi_mocks.of_type(VERTEX)
    for variant in vertex.wire["variants"]:
        assert secret_leaf(variant["env"]["API_TOKEN"]) == TOKEN
        assert variant["secret_env"] == sagemaker.wire["secret_env"]["champion"]

    (secret,) = pulumi_mocks.of_type("kubernetes:core/v1:Secret")
    # pulumi_kubernetes core/v1/Secret.py makes data and stringData secret as a whole.
    assert secret_leaf(secret.wire["stringData"]) == {"API_TOKEN": TOKEN}
    assert secret.wire["immutable"] is True
    assert "name" not in secret.wire["metadata"]
    name = computed_outputs(secret.type, secret.name, secret.inputs)["metadata"]["name"]
    for deployment in pulumi_mocks.of_type("kubernetes:apps/v1:Deployment"):
        (container,) = deployment.wire["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["API_TOKEN"] == {
            "name": "API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": name, "key": "API_TOKEN"}},
        }
        assert env["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "info"}


@pytest.mark.parametrize("provider", [SAGEMAKER, VERTEX])
def test_dynamic_provider_state_keeps_the_secret(
    pulumi_mocks: RecordingMocks, project: Path, provider: str
) -> None:
    """What the providers write to state (their inputs echoed, plus names, ids and release
    fingerprints) holds the token only under a property the engine marks secret."""
    run_up(project, TOKEN)
    (resource,) = pulumi_mocks.of_type(provider)
    plain = _unwrapped(resource.wire)
    outs = {**plain, "model_names": {"champion": "reranker-prod-champion-0123456789ab"}}
    assert [p for p, v in outside_secrets(outs) if v == TOKEN]  # the echo holds it...
    state = engine_state(outs, resource.wire)
    assert [p for p, v in outside_secrets(state) if v == TOKEN] == []  # ...marked secret


def _unwrapped(value: Any) -> Any:
    if isinstance(value, Mapping):
        if SECRET_SIG in value:
            return _unwrapped(value["value"])
        return {k: _unwrapped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrapped(v) for v in value]
    return value


def test_content_names_never_hash_the_token(pulumi_mocks: RecordingMocks, project: Path) -> None:
    """The SageMaker model and configuration names and the Vertex release fingerprint hash the
    ciphertext's fingerprint: the same token under another ciphertext gives other names, and
    the names do not change with the token itself (nothing to test guesses against)."""
    from infra.aws.endpoint_provider import desired
    from infra.gcp.vertex_deployments import release_of

    def names(token: str, ciphertext: str) -> tuple[dict[str, str], str, list[str]]:
        pulumi_mocks.resources.clear()
        run_up(project, token, ciphertext)
        sagemaker = _unwrapped(pulumi_mocks.one(SAGEMAKER).wire)
        vertex = _unwrapped(pulumi_mocks.one(VERTEX).wire)
        plan = desired(sagemaker)
        return plan.model_names, plan.config_name, [release_of(v) for v in vertex["variants"]]

    first = names(TOKEN, "v1:one")
    assert names(ROTATED, "v1:one") == first
    assert names(TOKEN, "v1:two") != first


def test_plan_diff_and_pr_comment_read_secret(pulumi_mocks: RecordingMocks, project: Path) -> None:
    """The plan (tree and ``--json``) and the diff (text: the PR comment; ``--json``) of two
    runs with a rotated token show ``[secret]`` where the token is and only there; the
    rotation shows as a new fingerprint."""
    run_up(project, TOKEN, "v1:one")
    before = recorded_plan("test", pulumi_mocks)
    pulumi_mocks.resources.clear()
    run_up(project, ROTATED, "v1:two")
    after = recorded_plan("test", pulumi_mocks)

    diff = diff_plans(before, after)
    outputs = [
        before.to_json(),
        render_tree(before),
        after.to_json(),
        render_diff(diff, "main"),
        to_json(diff, "main"),
    ]
    for text in outputs:
        assert TOKEN not in text
        assert ROTATED not in text
    (sagemaker,) = (r for r in after.resources if r.type == SAGEMAKER)
    environment = sagemaker.inputs["models"]["champion"]["PrimaryContainer"]["Environment"]
    assert environment["API_TOKEN"] == "[secret]"
    assert environment["LOG_LEVEL"] == "info"  # the rest stays readable
    assert sagemaker.inputs["endpoint_name"] == "reranker-prod"
    comment = render_diff(diff, "main")
    assert "secret_env.champion.API_TOKEN" in comment


def test_plain_get_object_would_leak(
    pulumi_mocks: RecordingMocks, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks above fail on a program that passes ``Config.get_object`` values on
    unmarked (the code before this change): they can fail."""
    monkeypatch.setattr(program, "mark", lambda values, _paths: values)
    # The old program scanned only keys Pulumi does not hold as secret for plain text.
    monkeypatch.setattr(program, "load_stack", functools.partial(load_stack, scan_secrets=False))
    run_up(project, TOKEN)
    found = leaks(pulumi_mocks, TOKEN)
    assert any(SAGEMAKER in f for f in found)
    assert any(VERTEX in f for f in found)
    assert any("kubernetes:apps/v1:Deployment" in f for f in found)
    assert TOKEN in recorded_plan("test", pulumi_mocks).to_json()


def test_a_secret_outside_an_environment_is_refused(
    pulumi_mocks: RecordingMocks, project: Path
) -> None:
    """Only environment values become secret Outputs; a secret elsewhere is an error naming
    the key, never its value."""
    from infra.stack.files import StackError

    document = load_document_text(stack_text("v1:one"))
    document["config"]["ml-endpoints:sagemaker"]["tags"] = {"team": {"secure": "v1:tags"}}
    text = dump_document(document)
    (project / "stacks" / "Pulumi.test.yaml").write_text(text)
    config = decrypted(text, TOKEN)
    config["ml-endpoints:sagemaker"]["tags"]["team"] = "ml-platform-team"
    pulumi.runtime.set_all_config({k: json.dumps(v) for k, v in config.items()}, list(ENV_KEYS))
    with pytest.raises(StackError) as error:
        pulumi.runtime.test(program.main)()  # type: ignore[no-untyped-call]
    assert "ml-endpoints:sagemaker.tags.team: cannot be a secret" in str(error.value)
    assert "ml-platform-team" not in str(error.value)
