"""Config errors that name the key, the value and what is allowed — raised before any resource
is declared. Every component's typed args are pydantic models validated through
:func:`validate`, so messages look the same everywhere."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Invalid configuration. ``key`` is the dotted path (``sagemaker.variants[1].weight``)."""

    def __init__(self, key: str, message: str, value: Any = None) -> None:
        self.key = key
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{key}: {message}{shown}")


def key_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``("variants", 1, "weight")`` under ``sagemaker`` -> ``sagemaker.variants[1].weight``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate(model: type[M], data: Any, prefix: str) -> M:
    """Build ``model`` from ``data``; on failure raise :class:`ConfigError` for the first error,
    listing the others, each with its full key path under ``prefix``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        key = key_path(prefix, tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        more = [f"{key_path(prefix, tuple(e['loc']))}: {e['msg']}" for e in errors[1:]]
        if more:
            message += "; also " + "; ".join(more)
        raise ConfigError(key, message, first.get("input")) from None
