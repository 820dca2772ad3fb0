"""Copying the release image into a stack's registries by digest, through ``crane``.

crane is not installed here: a stand-in keeps registries in a JSON file and answers the two
commands used, as crane does (go-containerregistry ``cmd/crane``: ``crane digest REF`` prints
the manifest digest or fails; ``crane copy SRC DST`` copies the manifest unchanged).
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from infra.image_copy import CopyError, copy_images
from infra.registries import ImageReference

DIGEST = "sha256:" + "a" * 64
SOURCE = "111111111111.dkr.ecr.us-east-1.amazonaws.com/build/serving"
ECR = "333333333333.dkr.ecr.us-east-1.amazonaws.com/ml-endpoints/serving"
AR = "us-central1-docker.pkg.dev/prod/serving/ml-endpoints"

FAKE_CRANE = """\
import json, sys
state_path, command, *args = sys.argv[1:]
with open(state_path) as f:
    state = json.load(f)
def digest_of(ref):
    if "@" in ref:
        repository, digest = ref.split("@")
        return digest if digest in state["images"].get(repository, []) else None
    repository, tag = ref.rsplit(":", 1)
    return state["tags"].get(ref)
if command == "digest":
    found = digest_of(args[0])
    if found is None:
        sys.exit(f"MANIFEST_UNKNOWN: {args[0]}")
    print(found)
elif command == "copy":
    source, destination = args
    digest = digest_of(source)
    if digest is None:
        sys.exit(f"MANIFEST_UNKNOWN: {source}")
    if state.get("rewrites"):
        digest = "sha256:" + "f" * 64
    repository = destination.rsplit(":", 1)[0]
    state["images"].setdefault(repository, []).append(digest)
    state["tags"][destination] = digest
    state["calls"].append(["copy", source, destination])
    with open(state_path, "w") as f:
        json.dump(state, f)
"""


@pytest.fixture
def crane(tmp_path: Path) -> tuple[str, Path]:
    """A crane stand-in holding the release in the build repository only."""
    state = tmp_path / "registries.json"
    state.write_text(
        json.dumps({"images": {SOURCE: [DIGEST]}, "tags": {f"{SOURCE}:1.6.0": DIGEST}, "calls": []})
    )
    script = tmp_path / "crane"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {tmp_path / "crane.py"} {state} "$@"\n')
    (tmp_path / "crane.py").write_text(FAKE_CRANE)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), state


def test_images_are_copied_by_digest_and_read_back(crane: tuple[str, Path]) -> None:
    command, state = crane
    images = [ImageReference(ECR, "1.6.0", DIGEST), ImageReference(AR, "1.6.0", DIGEST)]
    done = copy_images(images, SOURCE, command)
    calls = json.loads(state.read_text())["calls"]
    assert calls == [
        ["copy", f"{SOURCE}@{DIGEST}", f"{ECR}:1.6.0"],
        ["copy", f"{SOURCE}@{DIGEST}", f"{AR}:1.6.0"],
    ]
    assert done[0] == f"copied {SOURCE}@{DIGEST} -> {ECR}:1.6.0"
    # A second run finds the digest there and copies nothing (immutable tags are not pushed twice).
    assert copy_images(images, SOURCE, command) == [
        f"present {ECR}@{DIGEST}",
        f"present {AR}@{DIGEST}",
    ]
    assert len(json.loads(state.read_text())["calls"]) == 2


def test_an_unpinned_release_is_copied_as_the_digest_its_tag_has(crane: tuple[str, Path]) -> None:
    command, state = crane
    copy_images([ImageReference(ECR, "1.6.0")], SOURCE, command)
    assert json.loads(state.read_text())["calls"] == [
        ["copy", f"{SOURCE}@{DIGEST}", f"{ECR}:1.6.0"]
    ]


def test_a_copy_that_changes_the_digest_fails(crane: tuple[str, Path]) -> None:
    command, state = crane
    state.write_text(json.dumps({**json.loads(state.read_text()), "rewrites": True}))
    with pytest.raises(CopyError, match="changed the manifest"):
        copy_images([ImageReference(ECR, "1.6.0", DIGEST)], SOURCE, command)


def test_a_digest_missing_from_the_build_repository_fails_with_cranes_message(
    crane: tuple[str, Path],
) -> None:
    command, _ = crane
    other = "sha256:" + "b" * 64
    with pytest.raises(CopyError, match="MANIFEST_UNKNOWN"):
        copy_images([ImageReference(ECR, "1.7.0", other)], SOURCE, command)


def test_without_crane_the_error_says_where_to_get_it() -> None:
    with pytest.raises(CopyError, match="setup-crane"):
        copy_images([ImageReference(ECR, "1.6.0", DIGEST)], SOURCE, "/nonexistent/crane")
