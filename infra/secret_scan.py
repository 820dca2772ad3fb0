"""Find secrets written to a stack file in plain text.

Secrets belong in ``pulumi config set --secret`` (stored encrypted as ``{secure: ...}``) or in a
Pulumi ESC environment, never in clear in a file that goes through pull requests. A value is
flagged when its key names a secret (``password``, ``token``, ``api_key``...) and it is not a
reference (a path, an ARN, a Secret Manager name), or when the value itself has the shape of a
well-known credential (AWS access key ID, private key, GitHub or Google token, JWT).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SECURE_KEY = "secure"
"""How Pulumi writes an encrypted value: ``key: {secure: v1:...}``."""
ENCRYPTED_PLACEHOLDER = "[secret]"
"""What offline tools read an encrypted value as (they never decrypt)."""

_SECRET_NAME = re.compile(
    r"(^|[_.-])(password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|"
    r"access[_-]?key|client[_-]?secret|credentials?|auth)($|[_.-])",
    re.IGNORECASE,
)
_REFERENCE = re.compile(
    r"^(/|~|\./|\.\./|\$\{|arn:|projects/[^/]+/secrets/|sm://|vault:|env:)", re.IGNORECASE
)
_CREDENTIAL_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key ID", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}")),
    ("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
)


@dataclass(frozen=True)
class PlaintextSecret:
    """A value that should be encrypted: its config key path and why it was flagged."""

    key: str
    reason: str


def is_encrypted(value: Any) -> bool:
    """``{secure: ...}``: a value Pulumi stores encrypted."""
    return isinstance(value, Mapping) and set(value) == {SECURE_KEY}


def find_plaintext_secrets(config: Mapping[str, Any]) -> list[PlaintextSecret]:
    """Every plain-text secret in a stack's ``config`` mapping, by key path."""
    return [
        found
        for key, value in config.items()
        for found in _scan(str(key), str(key).rpartition(":")[2], value)
    ]


def _scan(path: str, name: str, value: Any) -> Iterator[PlaintextSecret]:
    if is_encrypted(value) or value == ENCRYPTED_PLACEHOLDER:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _scan(f"{path}.{key}", str(key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _scan(f"{path}[{index}]", name, item)
    elif isinstance(value, str) and value:
        for what, shape in _CREDENTIAL_SHAPES:
            if shape.search(value):
                yield PlaintextSecret(path, f"looks like a {what}")
                return
        if _SECRET_NAME.search(name) and not _REFERENCE.match(value):
            yield PlaintextSecret(path, f"{name!r} names a secret")


def secret_advice(key: str) -> str:
    """How to store ``key`` properly."""
    return (
        f"store it encrypted: pulumi config set --secret --path '{key}' VALUE "
        "(or read it from a Pulumi ESC environment); never in plain text"
    )
