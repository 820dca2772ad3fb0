"""Operators' commands need the infra extra only (issue 15 item 7): ``make plan``, ``diff``,
``validate``, ``promote`` and ``rollback`` install ``.[infra]`` (Makefile ``$(VENV)/.infra``;
the pull request's offline-plan job does the same), so nothing they import may come from
another extra: no torch, no serving runtime (orjson, prometheus_client, uvicorn...), no test
tools, no cloud SDKs beyond botocore.

A fresh ``.[infra]`` venv takes minutes to build, so the commands run here, in the test venv,
with every module the infra extra does not bring refused on import (a ``sitecustomize`` that
the planning subprocesses inherit through ``PYTHONPATH``). The modules refused are computed:
every installed distribution outside the dependency closure of the infra extra's requirements
(``pyproject.toml``, read with ``importlib.metadata``), by the top-level modules it provides.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.infra.offline_plans import ROOT, STACKS_DIR

OWN = {"serving", "infra", "tests", "bench"}


def _closure(requirements: list[str]) -> set[str]:
    """Canonical names of the distributions ``requirements`` install, transitively."""
    seen: set[str] = set()
    todo = [(Requirement(r), frozenset()) for r in requirements]
    while todo:
        requirement, _ = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        extras = ("", *requirement.extras)
        for text in requires:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                todo.append((child, frozenset()))
    return seen


def refused_modules() -> set[str]:
    """Top-level modules of the installed distributions the infra extra does not bring."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = _closure([*project["dependencies"], *project["optional-dependencies"]["infra"]])
    refused = set()
    for module, distributions in importlib.metadata.packages_distributions().items():
        if module in OWN or module.startswith("_"):
            continue
        if not {canonicalize_name(d) for d in distributions} & allowed:
            refused.add(module)
    return refused


BLOCKER = """
import sys

REFUSED = frozenset({refused!r})


class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in REFUSED:
            raise ImportError(f"{{name}} is not installed by the infra extra")
        return None


sys.meta_path.insert(0, _Refuse())
"""


@pytest.fixture(scope="module")
def infra_only_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    refused = refused_modules()
    # the check is only as good as the list: the heavy and test-only ones must be in it
    assert {"torch", "numpy", "orjson", "prometheus_client", "pytest", "boto3"} <= refused
    site = tmp_path_factory.mktemp("infra-only")
    (site / "sitecustomize.py").write_text(BLOCKER.format(refused=sorted(refused)))
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "ml-endpoints"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_blocker_refuses_what_the_infra_extra_lacks(infra_only_env: dict[str, str]) -> None:
    """The check itself: a refused module fails to import in a child process."""
    probe = [sys.executable, "-c", "import orjson"]
    result = subprocess.run(probe, env=infra_only_env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "not installed by the infra extra" in result.stderr


def test_validate_plans_and_checks_a_stack_with_the_infra_extra_alone(
    infra_only_env: dict[str, str],
) -> None:
    """``make validate`` runs the program under mocks (every component, the SageMaker alarms
    and Vertex alerts included) and the policy pack."""
    result = _run(infra_only_env, "validate", "--stack", "prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok   prod (production)")


def test_promote_and_rollback_with_the_infra_extra_alone(
    infra_only_env: dict[str, str], tmp_path: Path
) -> None:
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    promoted = _run(infra_only_env, "promote", "dev", "staging", "--stacks-dir", str(stacks))
    assert promoted.returncode == 0, promoted.stderr
    rolled_back = _run(infra_only_env, "rollback", "staging", "--stacks-dir", str(stacks))
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert (stacks / "Pulumi.staging.yaml").read_text() == (
        STACKS_DIR / "Pulumi.staging.yaml"
    ).read_text()


def test_plan_and_diff_modules_import_with_the_infra_extra_alone(
    infra_only_env: dict[str, str],
) -> None:
    """``plan`` and ``diff`` run the same planning process as ``validate`` (above); their own
    modules (and the CLI's entry point, ``serving.cli``) must import too."""
    modules = "serving.cli, infra.cli, infra.stack.diff, infra.stack.plan, infra.stack.promotion"
    probe = [sys.executable, "-c", f"import {modules}"]
    result = subprocess.run(probe, env=infra_only_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
