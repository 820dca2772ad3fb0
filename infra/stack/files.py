"""Stack files (``stacks/Pulumi.<stack>.yaml``) on disk, read with one YAML library.

ruamel.yaml reads every stack file: promotion needs its round-trip mode to edit a file in place
(comments, key order and quoting survive), so plain reads use the same library. It speaks YAML
1.2, as Pulumi's own reader does for untyped values (``yes``/``on`` stay strings).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from infra.secret_scan import ENCRYPTED_PLACEHOLDER, is_encrypted
from infra.validation import ConfigError

STACKS_DIR = Path("stacks")
SECRET_PLACEHOLDER = ENCRYPTED_PLACEHOLDER
"""What an encrypted value reads as offline (plan, validate): the real value never leaves Pulumi."""


class StackError(ConfigError):
    """Invalid stack configuration; ``key`` is ``<stack file>: ml-endpoints:<key path>``."""


def stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    """``stacks/Pulumi.<stack>.yaml``."""
    return stacks_dir / f"Pulumi.{stack}.yaml"


def _round_trip() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def load_document(path: Path) -> CommentedMap:
    """The stack file as an editable document (comments and order kept); its ``config``
    mapping is checked to exist."""
    try:
        document = _round_trip().load(path.read_text())
    except OSError as exc:
        raise StackError(str(path), f"cannot read the stack file: {exc.strerror}") from None
    except YAMLError as exc:
        raise yaml_error(path, exc) from None
    config = document.get("config", {}) if isinstance(document, CommentedMap) else None
    if not isinstance(config, dict):
        raise StackError(f"{path}: config", "must be a mapping of configuration keys")
    return document if document is not None else CommentedMap()


def yaml_error(path: Path, exc: YAMLError) -> StackError:
    """``FILE:LINE:COLUMN: not valid YAML: what the parser expected`` (one line, as compilers
    report it, so editors jump to it)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return StackError(where, f"not valid YAML: {problem}" + (f" ({context})" if context else ""))


def dump_document(document: CommentedMap) -> str:
    """The document as text, unchanged parts byte for byte as they were read."""
    out = io.StringIO()
    _round_trip().dump(document, out)
    return out.getvalue()


def plain_config(document: CommentedMap) -> dict[str, Any]:
    """A document's ``config`` as plain values, encrypted values read as
    :data:`SECRET_PLACEHOLDER` (offline tools never decrypt)."""
    config = document.get("config") or {}
    return {str(key): plain(value) for key, value in config.items()}


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config`` mapping of a stack file as offline tools see it: encrypted values are
    :class:`~infra.secret_values.Secret` placeholders (``[secret]``, with the fingerprint of
    their ciphertext), so the program treats them as secrets offline as it does under Pulumi."""
    from infra.secret_values import mark, secret_paths

    document = load_document(path)
    return mark(plain_config(document), secret_paths(document.get("config") or {}))


def plain(value: Any) -> Any:
    """A value read from a document as plain Python (dicts, lists, builtin scalars), encrypted
    values as :data:`SECRET_PLACEHOLDER`."""
    if is_encrypted(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):  # round-trip scalars subclass these; keep the base type
        if isinstance(value, kind):
            return kind(value)
    return value
