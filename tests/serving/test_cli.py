"""``ml-endpoints``: command groups register themselves; a broken group is reported, not hidden."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from serving import cli

ROOT = Path(__file__).resolve().parents[2]


def _groups(monkeypatch: pytest.MonkeyPatch, *entries: EntryPoint) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: list(entries))


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_installed_groups_add_their_commands() -> None:
    """The package's own entry point (pyproject.toml) brings the infra commands."""
    commands = _commands(cli.build_parser())
    assert {"serve", "healthcheck", "demo-model", "profile"} <= commands
    assert {"verify", "promote", "rollback", "plan", "diff", "validate"} <= commands


def test_group_whose_package_is_absent_is_left_out_silently(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The image has no ``infra`` package but the same entry-point metadata."""
    _groups(monkeypatch, EntryPoint("infra", "no_such_half.cli:register", cli.COMMAND_GROUP))
    commands = _commands(cli.build_parser())
    assert commands == {"serve", "healthcheck", "demo-model", "profile"}
    assert capsys.readouterr().err == ""


def test_broken_group_is_reported_and_serving_still_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An import error *inside* an installed group (here: a module it imports is missing) is
    printed, naming the group and the error; the serving commands stay usable."""
    broken = EntryPoint("infra", "tests.serving.broken_group:register", cli.COMMAND_GROUP)
    _groups(monkeypatch, broken)
    commands = _commands(cli.build_parser())
    err = capsys.readouterr().err
    assert "the infra commands are unavailable" in err
    assert "ModuleNotFoundError" in err
    assert "not_installed_dependency" in err
    assert "serve" in commands
    assert "plan" not in commands


def test_every_command_has_a_function() -> None:
    parser = cli.build_parser()
    for name in _commands(parser):
        args = parser.parse_args(_minimal_args(name))
        assert callable(args.func), name


def _minimal_args(name: str) -> list[str]:
    required = {
        "demo-model": ["--out", "x"],
        "profile": ["data.csv"],
        "verify": ["--stack", "dev"],
        "promote": ["dev", "staging"],
        "rollback": ["prod"],
        "plan": ["--stack", "dev"],
        "diff": ["--stack", "dev", "--base", "HEAD"],
        "preflight": ["--stack", "dev"],
        "images": ["--stack", "dev"],
        "gc": ["--stack", "dev"],
        "canary": ["--stack", "dev"],
    }
    return [name, *required.get(name, [])]


def test_console_script_runs_where_only_serving_is_installed(tmp_path: Path) -> None:
    """As in the image: ``serving`` alone on the path, the entry point's metadata still there
    (the image installs the same pyproject.toml), no ``infra`` package. Serving commands work,
    nothing is reported."""
    shutil.copytree(ROOT / "serving", tmp_path / "serving")
    site_packages = sysconfig.get_paths()["purelib"]
    # -S: no .pth files, so the editable install's finder (which maps `infra`) is not loaded,
    # while site-packages, with the package's entry-point metadata, is on the path.
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(tmp_path)!r}]; sys.path.append({site_packages!r})\n"
        "import importlib.util; assert importlib.util.find_spec('infra') is None\n"
        "from importlib.metadata import entry_points\n"
        "assert entry_points(group='ml_endpoints.commands'), 'metadata expected'\n"
        "from serving.cli import main\n"
        "sys.exit(main(['demo-model', '--help']))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
