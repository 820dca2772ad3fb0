"""The two directories Pulumi runs as Python programs: ``infra/program/`` (the program,
``main:`` in Pulumi.yaml) and ``infra/policy/`` (the policy pack, ``--policy-pack infra/policy``).

Pulumi runs both with ``runpy.run_path(DIRECTORY, run_name="__main__")``, which puts the
directory itself first on ``sys.path`` (read in pulumi/pulumi at 1b5949891b3c):

- the program: ``sdk/python/cmd/pulumi-language-python-exec`` runs
  ``runpy.run_path(args.PROGRAM, run_name="__main__")``, where ``PROGRAM`` is the project's
  entry point (``constructArguments`` in ``sdk/python/cmd/pulumi-language-python/main.go``
  appends ``req.Info.EntryPoint``, i.e. ``main:``);
- the policy pack: ``RunPlugin`` in the same ``main.go`` starts analyzers as
  ``python -u -m pulumi.policy ... PROGRAM_DIRECTORY``, and ``sdk/python/lib/pulumi/policy/
  __main__.py`` runs ``runpy.run_path(program, run_name="__main__")``.

So whatever is importable in those directories shadows a top-level module of the same name (it
was: ``infra/`` itself was the program directory, and its ``cli``, ``plan``, ``stack``... needed
a ``sys.path`` hack). The directories hold their entry point and manifests only.
"""

from __future__ import annotations

import json
import pkgutil
import runpy
import sys
from pathlib import Path

import pulumi
import pytest
from ruamel.yaml import YAML

from infra.stack.files import read_stack_file, stack_file
from infra.stack.mocks import RecordingMocks
from tests.infra.offline_plans import ROOT, STACKS_DIR

PROGRAM = ROOT / "infra" / "program"
POLICY_PACK = ROOT / "infra" / "policy"
MANIFESTS = {"PulumiPolicy.yaml", "requirements.txt"}
"""Files Pulumi reads next to a policy pack's entry point; Python cannot import them."""


def test_pulumi_yaml_runs_the_program_directory() -> None:
    project = YAML(typ="safe").load((ROOT / "Pulumi.yaml").read_text())
    assert project["main"] == "infra/program/"
    assert (ROOT / project["main"]).resolve() == PROGRAM


@pytest.mark.parametrize("directory", [PROGRAM, POLICY_PACK], ids=["program", "policy-pack"])
def test_entry_directories_hold_nothing_importable(directory: Path) -> None:
    assert {m.name for m in pkgutil.iter_modules([str(directory)])} == {"__main__"}
    entries = {p.name for p in directory.iterdir() if p.name != "__pycache__"}
    # a subdirectory would import as a namespace package; anything else must be a manifest
    assert entries - MANIFESTS == {"__main__.py"}
    assert not [p for p in directory.iterdir() if p.is_dir() and p.name != "__pycache__"]


def test_the_program_runs_as_pulumi_runs_it(pulumi_mocks: RecordingMocks) -> None:
    config = read_stack_file(stack_file("dev", STACKS_DIR))
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    path = list(sys.path)

    pulumi.runtime.test(lambda: runpy.run_path(str(PROGRAM), run_name="__main__"))()  # type: ignore[no-untyped-call]

    assert sys.path == path
    assert pulumi_mocks.one("ml-endpoints:aws:SageMakerEndpoint").name == "sagemaker"
    assert pulumi_mocks.one("ml-endpoints:k8s:ModelDeployment").name == "kubernetes"
