"""``ml-endpoints promote`` and ``rollback`` on copies of the repository's stack files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.stack.files import dump_document, load_document, read_stack_file
from infra.stack.promotion import PromotionError, promote, rollback, write
from serving.cli import main
from tests.infra.offline_plans import STACKS_DIR

DIGEST_A = "sha256:" + "ab12" * 16
DIGEST_B = "sha256:" + "cd34" * 16


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    for path in STACKS_DIR.glob("Pulumi.*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def top_keys(text: str) -> list[str]:
    return re.findall(r"^  ([\w:-]+):", text, flags=re.MULTILINE)


def release_section(text: str) -> str:
    """The lines of ``ml-endpoints:release`` (up to the next top-level config key)."""
    match = re.search(r"^  ml-endpoints:release:\n(?:(?:    .*|\s*#.*)?\n)*", text, re.MULTILINE)
    assert match is not None
    return match.group(0)


def set_release(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def config_of(text: str) -> dict[str, Any]:
    """The ``config`` of a stack file's text."""
    config: dict[str, Any] = YAML(typ="safe").load(text)["config"]
    return config


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_promote_copies_the_release_and_keeps_comments_and_order(stacks: Path) -> None:
    before = (stacks / "Pulumi.prod.yaml").read_text()
    change = promote("staging", "prod", stacks)
    write(change)
    after = (stacks / "Pulumi.prod.yaml").read_text()
    # Every comment stays; the kept previous release carries its own along.
    assert comments(after) == [*comments(before), *comments(release_section(before))]
    assert top_keys(after) == [*top_keys(before), "ml-endpoints:previous_release"]
    document = config_of(after)
    staging = read_stack_file(stacks / "Pulumi.staging.yaml")
    assert document["ml-endpoints:release"] == staging["ml-endpoints:release"]
    assert document["ml-endpoints:previous_release"] == config_of(before)["ml-endpoints:release"]
    # Only the release lines changed; everything else is byte-identical.
    changed = [
        line
        for line in after.splitlines()
        if line not in before.splitlines() and "previous_release" not in line
    ]
    assert changed == ["        weight: 90", "        weight: 10"]
    assert change.summary == [
        "promote staging -> prod",
        "champion 100% -> 90%",
        "challenger 0% -> 10%",
    ]


def test_each_stack_file_is_parsed_once(stacks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    original = YAML.load

    def counting(self: YAML, stream: Any) -> Any:
        parsed.append(stream if isinstance(stream, str) else "")
        return original(self, stream)

    monkeypatch.setattr(YAML, "load", counting)
    staging, prod = (stacks / "Pulumi.staging.yaml").read_text(), stacks / "Pulumi.prod.yaml"
    before = prod.read_text()
    write(promote("staging", "prod", stacks))
    assert parsed == [staging, before]
    parsed.clear()
    promoted = prod.read_text()
    write(rollback("prod", stacks))
    assert parsed == [promoted]


def test_rollback_restores_the_release_byte_for_byte(stacks: Path) -> None:
    prod = stacks / "Pulumi.prod.yaml"
    original = prod.read_text()
    set_release(stacks / "Pulumi.staging.yaml", 'model_version: "15"', 'model_version: "16"')
    write(promote("staging", "prod", stacks))
    assert prod.read_text() != original
    change = rollback("prod", stacks)
    write(change)
    assert prod.read_text() == original
    assert "challenger model 16 -> 15" in change.summary
    assert "challenger 10% -> 0%" in change.summary


def test_rollback_after_an_added_variant_restores_the_release_section(stacks: Path) -> None:
    staging = stacks / "Pulumi.staging.yaml"
    document = load_document(staging)
    release = document["config"]["ml-endpoints:release"]
    release["variants"][0]["weight"] = 80
    release["variants"].append({**release["variants"][1], "name": "shadow", "weight": 10})
    release["image"]["digest"] = DIGEST_B
    staging.write_text(dump_document(document))
    prod = stacks / "Pulumi.prod.yaml"
    original = prod.read_text()
    change = promote("staging", "prod", stacks)
    prod_digest = "sha256:3b8e1f0a9c7d5e2b4a6f8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f"
    # The digests a reviewer compares, whole (issue 15: never sha256:9f2...).
    assert f"image {prod_digest} -> {DIGEST_B}" in change.summary
    assert "shadow added: model 15, 10%" in change.summary
    write(change)
    write(rollback("prod", stacks))
    assert release_section(prod.read_text()) == release_section(original)
    assert "shadow" not in prod.read_text()


def test_prod_refuses_a_mutable_tag(stacks: Path) -> None:
    set_release(
        stacks / "Pulumi.staging.yaml", "      digest: sha256:3b8e", "      # digest: sha256:3b8e"
    )
    before = (stacks / "Pulumi.prod.yaml").read_text()
    with pytest.raises(
        PromotionError,
        match=re.escape(
            "needs the image pinned by digest, the release has only the mutable tag '1.5.2'"
        ),
    ):
        promote("staging", "prod", stacks)
    assert (stacks / "Pulumi.prod.yaml").read_text() == before
    # A non-production stack takes a tag (going back a stage needs --force).
    write(promote("staging", "dev", stacks, force=True))
    assert (
        "digest" not in read_stack_file(stacks / "Pulumi.dev.yaml")["ml-endpoints:release"]["image"]
    )


def test_an_invalid_result_is_not_written(stacks: Path) -> None:
    staging = stacks / "Pulumi.staging.yaml"
    document = load_document(staging)
    document["config"]["ml-endpoints:release"]["variants"][1].pop("gcs_uri")
    staging.write_text(dump_document(document))
    with pytest.raises(
        PromotionError,
        match=r"nothing written: .*Pulumi\.prod\.yaml: "
        r"ml-endpoints:release\.variants\[1\]\.gcs_uri: required",
    ):
        promote("staging", "prod", stacks)


def test_nothing_to_do_and_nothing_to_roll_back(stacks: Path) -> None:
    write(promote("staging", "prod", stacks))
    with pytest.raises(PromotionError, match="already runs the release"):
        promote("staging", "prod", stacks)
    write(rollback("prod", stacks))
    with pytest.raises(PromotionError, match="no ml-endpoints:previous_release to roll back to"):
        rollback("prod", stacks)


def test_cli_promote_dry_run_and_rollback(stacks: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prod = stacks / "Pulumi.prod.yaml"
    original = prod.read_text()
    code, out, _ = cli(
        "promote", "staging", "prod", "--stacks-dir", str(stacks), "--dry-run", capsys=capsys
    )
    assert code == 0
    assert "challenger 0% -> 10%" in out
    assert "dry run" in out
    assert prod.read_text() == original
    code, out, _ = cli("promote", "staging", "prod", "--stacks-dir", str(stacks), capsys=capsys)
    assert code == 0
    assert f"wrote {prod}" in out
    code, out, _ = cli("rollback", "prod", "--stacks-dir", str(stacks), capsys=capsys)
    assert code == 0
    assert "challenger 10% -> 0%" in out
    assert prod.read_text() == original
    code, _, err = cli("rollback", "prod", "--stacks-dir", str(stacks), capsys=capsys)
    assert code == 2
    assert "no ml-endpoints:previous_release" in err


def test_promote_from_a_missing_stack(stacks: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli("promote", "qa", "prod", "--stacks-dir", str(stacks), capsys=capsys)
    assert code == 2
    assert f"{stacks / 'Pulumi.qa.yaml'}: cannot read the stack file" in err


def test_skipping_a_stage_is_refused_unless_forced(stacks: Path) -> None:
    """dev -> prod would put a release in production that staging never ran."""
    before = (stacks / "Pulumi.prod.yaml").read_text()
    with pytest.raises(PromotionError) as refused:
        promote("dev", "prod", stacks)
    message = str(refused.value)
    assert "the order is dev -> staging -> prod and staging would be skipped" in message
    assert "promote dev staging first, or pass --force" in message
    assert (stacks / "Pulumi.prod.yaml").read_text() == before
    with pytest.raises(PromotionError, match="use rollback staging to go back"):
        promote("prod", "staging", stacks)
    assert promote("dev", "prod", stacks, force=True).path == stacks / "Pulumi.prod.yaml"


def test_the_command_refuses_a_skipped_stage(
    stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.cli import main

    assert main(["promote", "dev", "prod", "--stacks-dir", str(stacks)]) == 2
    assert "refusing to promote dev -> prod" in capsys.readouterr().err
