"""``make bootstrap`` deploys the registries alone: its ``--target`` patterns select, in every
stack's plan, the registry components, their children and the project services, and nothing
that deploys an image.

Patterns are matched as Pulumi matches them (pulumi/pulumi ``pkg/resource/deploy/deployment.go``,
``UrnTargets.getMatcher``: ``**`` is any text, ``*`` any text without ``:``).
"""

from __future__ import annotations

import re
import shlex

from tests.infra.offline_plans import ROOT, stack_plans

REGISTRY_TYPES = {"ml-endpoints:aws:EcrRepository", "ml-endpoints:gcp:ArtifactRegistry"}


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
