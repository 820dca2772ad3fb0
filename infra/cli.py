"""Infrastructure subcommands of ``ml-endpoints`` (``verify``), delegated to by
:mod:`serving.cli`. Each deployment target contributes one verifier."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from infra.validation import ConfigError

#: Target -> ``module:function`` with signature ``(stack_config, stack_dir) -> findings | None``
#: (None: the stack has no configuration for that target). Imported only when used.
VERIFIERS: dict[str, str] = {
    "sagemaker": "infra.aws.verify:verify_stack",
}
COMMANDS = frozenset({"verify"})
#: What ``verify`` needs beyond the base install.
VERIFY_EXTRAS = "ml-endpoints[aws,infra]"


class Finding(Protocol):
    """What a verifier reports per check."""

    @property
    def subject(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...


Verifier = Callable[[Mapping[str, Any], Path], "list[Finding] | None"]


def add_parsers(subparsers: Any) -> None:
    """Add the infrastructure subcommands to ``ml-endpoints``' subparsers."""
    verify = subparsers.add_parser(
        "verify",
        help="check a deployed stack: status, rollbacks, weights, and a sample invocation",
        description="Verify every endpoint a stack configures (SageMaker today). "
        "AWS credentials, region and endpoint come from the usual AWS settings; the stack's "
        "aws:region wins over the default region.",
    )
    verify.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    verify.add_argument(
        "--stacks-dir",
        type=Path,
        default=Path("stacks"),
        help="directory holding the stack files (default: stacks)",
    )


def run(args: argparse.Namespace) -> int | None:
    """Run a subcommand this module owns; None for any other command."""
    if args.command not in COMMANDS:
        return None
    return verify(args.stack, args.stacks_dir)


def load_stack_config(stacks_dir: Path, stack: str) -> dict[str, Any]:
    """The ``config`` mapping of ``stacks_dir/Pulumi.<stack>.yaml``."""
    import yaml  # no stubs installed

    path = stacks_dir / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the stack file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from None
    config = (document or {}).get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config", "must be a mapping of configuration keys")
    return config


def verify(stack: str, stacks_dir: Path) -> int:
    """Print one line per check; 0 if all pass, 1 if any fails, 2 on configuration errors."""
    try:
        config = load_stack_config(stacks_dir, stack)
        results = {target: _verifier(target)(config, stacks_dir) for target in VERIFIERS}
    except ConfigError as exc:
        print(f"ml-endpoints verify: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(
            f"ml-endpoints verify: {exc.name} is not installed; pip install '{VERIFY_EXTRAS}'",
            file=sys.stderr,
        )
        return 2
    findings = [(t, f) for t, found in results.items() if found is not None for f in found]
    if not any(found is not None for found in results.values()):
        keys = ", ".join(f"ml-endpoints:{t}" for t in VERIFIERS)
        print(
            f"ml-endpoints verify: stack {stack!r} configures nothing to verify ({keys})",
            file=sys.stderr,
        )
        return 2
    for target, finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        print(f"{mark} {target} {finding.subject}: {finding.detail}")
    failed = sum(not f.ok for _, f in findings)
    if failed:
        print(f"ml-endpoints verify: {failed} of {len(findings)} checks failed", file=sys.stderr)
        return 1
    print(f"ml-endpoints verify: all {len(findings)} checks passed")
    return 0


def _verifier(target: str) -> Verifier:
    module, _, function = VERIFIERS[target].partition(":")
    verifier: Verifier = getattr(importlib.import_module(module), function)
    return verifier
