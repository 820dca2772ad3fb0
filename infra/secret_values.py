"""Secret configuration values that stay secret from the stack file to every resource input.

A value set with ``pulumi config set --secret --path 'ml-endpoints:kubernetes.env.API_TOKEN'`` is
stored in the stack file as ``API_TOKEN: {secure: v1:...}``. Pulumi hands the program the whole
top-level key decrypted and marks only that key as secret (pulumi/pulumi
``sdk/go/common/resource/config/value.go``: an object is ``secure`` when any value in it is;
``sdk/python/lib/pulumi/runtime/config.py`` ``is_config_secret`` knows top-level keys only), so
``Config.get_object`` returns the token in plain text (``sdk/python/lib/pulumi/config.py``:
``get_object`` is ``json.loads`` of the raw text, while ``get_secret_object`` wraps the *whole*
value in ``Output.secret``, which would hide the target's weights and sizes too). The stack file
says which values are secret:

- :func:`secret_paths` finds the ``{secure: ...}`` values of a stack file's ``config``, with a
  fingerprint of each ciphertext;
- :func:`mark` wraps the values at those paths in :class:`Secret`, which validates only where a
  secret may go (environment values), prints as ``[secret]`` and never serialises its value;
- :func:`to_input` turns it into ``pulumi.Output.secret`` where a component builds a resource
  input, so the engine keeps it encrypted in state and masks it in previews, and Pulumi's mocks
  (and so ``ml-endpoints plan``) see the secret marker instead of the value;
- :func:`sealed` replaces it by its fingerprint where a content name hashes a request: a hash of
  the value would let anyone who reads a plan or a PR comment test guesses of a weak secret
  offline. The fingerprint hashes the *ciphertext*: it changes when the value is set again (a new
  release, which the preview shows) and reveals nothing about the value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from infra.secret_scan import ENCRYPTED_PLACEHOLDER, SECURE_KEY, is_encrypted

Path = tuple[str | int, ...]

FINGERPRINT_LENGTH = 12


class Secret:
    """A configuration value that must reach resources only as a secret Output."""

    __slots__ = ("_value", "fingerprint")

    def __init__(self, value: str, fingerprint: str) -> None:
        self._value = value
        self.fingerprint = fingerprint
        """Hash of the stack file's ciphertext: what content names and offline diffs see."""

    def reveal(self) -> str:
        """The plain value: for :func:`to_input` and length checks, nothing else."""
        return self._value

    def __repr__(self) -> str:
        return ENCRYPTED_PLACEHOLDER

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Secret)
            and other._value == self._value
            and other.fingerprint == self.fingerprint
        )

    def __hash__(self) -> int:
        return hash((Secret, self.fingerprint))

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


SECRET_NOT_ALLOWED = (
    "cannot be a secret: only environment values (ml-endpoints:sagemaker.environment, "  # noqa: S105
    "ml-endpoints:vertex.env, ml-endpoints:kubernetes.env) and ml-endpoints:cluster.kubeconfig "
    "are passed on as secrets; store this value in plain text"
)


def fingerprint(ciphertext: str) -> str:
    """A short hash of a ciphertext (``v1:...``)."""
    return hashlib.sha256(ciphertext.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def secret_paths(config: Mapping[str, Any]) -> dict[Path, str]:
    """Path -> fingerprint of every encrypted value in a stack file's ``config`` mapping as
    written (``{secure: ...}``); paths look like ``("ml-endpoints:kubernetes", "env", "KEY")``."""
    return dict(_encrypted(config, ()))


def _encrypted(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if is_encrypted(value):
        yield path, fingerprint(str(value[SECURE_KEY]))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _encrypted(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _encrypted(item, (*path, index))


def mark(config: Mapping[str, Any], paths: Mapping[Path, str]) -> dict[str, Any]:
    """``config`` with every text value at or under one of ``paths`` wrapped in :class:`Secret`
    (a whole object set with ``--secret`` makes each of its values secret)."""
    return {key: _mark(value, (key,), paths, None) for key, value in config.items()}


def _mark(value: Any, path: Path, paths: Mapping[Path, str], inherited: str | None) -> Any:
    own = paths.get(path)
    if own is None and inherited is not None:
        own = fingerprint(inherited + "/" + "/".join(map(str, path)))
    if isinstance(value, Mapping):
        return {k: _mark(v, (*path, str(k)), paths, own) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v, (*path, i), paths, own) for i, v in enumerate(value)]
    if own is not None and isinstance(value, str):
        return Secret(value, own)
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


def revealed(value: str | Secret) -> str:
    """The text of a value that may be a secret, for an input the caller makes secret itself."""
    return value.reveal() if isinstance(value, Secret) else value


def sealed(value: Any) -> Any:
    """``value`` with every :class:`Secret` replaced by ``[secret FINGERPRINT]``: what a
    content name may hash."""
    if isinstance(value, Secret):
        return f"{ENCRYPTED_PLACEHOLDER[:-1]} {value.fingerprint}]"
    if isinstance(value, Mapping):
        return {k: sealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sealed(v) for v in value]
    return value


def fingerprints(env: Mapping[str, Any]) -> dict[str, str]:
    """Variable name -> fingerprint of the secret values of an environment."""
    return {k: v.fingerprint for k, v in env.items() if isinstance(v, Secret)}


def has_secret(value: Any) -> bool:
    """Whether ``value`` holds a :class:`Secret` anywhere."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        return any(has_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_secret(v) for v in value)
    return False
