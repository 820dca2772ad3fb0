"""Secret configuration values that stay secret from the stack file to every resource input.

A value set with ``pulumi config set --secret --path 'ml-endpoints:kubernetes.env.API_TOKEN'`` is
stored in the stack file as ``API_TOKEN: {secure: v1:...}``. Pulumi hands the program the whole
top-level key decrypted and marks only that key as secret (pulumi/pulumi
``sdk/go/common/resource/config/value.go``: an object is ``secure`` when any value in it is;
``sdk/python/lib/pulumi/runtime/config.py`` ``is_config_secret`` knows top-level keys only), so
``Config.get_object`` returns the token in plain text and ``get_secret_object`` would hide the
whole target, weights and sizes included. The stack file says which values are secret:

- :func:`secret_paths` finds the ``{secure: ...}`` values of a stack file's ``config``;
- :func:`mark` wraps the values at those paths in :class:`Secret`, which validates where a
  secret may go (environment values), prints as ``[secret]`` and never compares equal to text;
- :func:`to_input` turns it into ``pulumi.Output.secret`` where a component builds a resource
  input, so the engine keeps it encrypted in state and masks it in previews, and Pulumi's mocks
  (and so ``ml-endpoints plan``) see the secret marker instead of the value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from infra.secret_scan import ENCRYPTED_PLACEHOLDER, is_encrypted

Path = tuple[str | int, ...]


class Secret:
    """A configuration value that must reach resources only as a secret Output."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value: for :func:`to_input` and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return ENCRYPTED_PLACEHOLDER

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Accepted as is (never built from text: only :func:`mark` makes secrets); dumps as
        ``[secret]`` so no serialisation can leak it."""
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _: ENCRYPTED_PLACEHOLDER
            ),
        )


def secret_paths(config: Mapping[str, Any]) -> set[Path]:
    """Paths (``("ml-endpoints:kubernetes", "env", "API_TOKEN")``) of the encrypted values in a
    stack file's ``config`` mapping as written (``{secure: ...}``)."""
    return set(_encrypted(config, ()))


def _encrypted(value: Any, path: Path) -> Iterator[Path]:
    if is_encrypted(value):
        yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _encrypted(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _encrypted(item, (*path, index))


def mark(config: Mapping[str, Any], paths: set[Path]) -> dict[str, Any]:
    """``config`` with the text values at ``paths`` wrapped in :class:`Secret`."""
    return {key: _mark(value, (key,), paths) for key, value in config.items()}


def _mark(value: Any, path: Path, paths: set[Path]) -> Any:
    if path in paths and isinstance(value, str):
        return Secret(value)
    if isinstance(value, Mapping):
        return {k: _mark(v, (*path, str(k)), paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v, (*path, i), paths) for i, v in enumerate(value)]
    return value


def to_input(value: Any) -> Any:
    """A resource input: a :class:`Secret` becomes ``pulumi.Output.secret``; dicts and lists
    are converted item by item; anything else is returned as it is."""
    if isinstance(value, Secret):
        import pulumi

        return pulumi.Output.secret(value.reveal())
    if isinstance(value, Mapping):
        return {k: to_input(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_input(v) for v in value]
    return value


def has_secret(value: Any) -> bool:
    """Whether ``value`` holds a :class:`Secret` anywhere."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        return any(has_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_secret(v) for v in value)
    return False
