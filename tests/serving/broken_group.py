"""A command group whose import fails inside it (used by test_cli)."""

import not_installed_dependency  # noqa: F401


def register(subparsers: object) -> None:  # pragma: no cover - never reached
    raise AssertionError
