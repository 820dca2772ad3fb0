"""What every typed config model shares: the frozen base, errors that name the key, the value
and what is allowed (raised before any resource is declared), and the one rule for variants.

Component args and the stack models are pydantic models built on :class:`Frozen`; validating
them through :func:`validate` gives the same message shape everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


class Frozen(BaseModel):
    """Base of every config model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=BaseModel)

Weight = Annotated[int, Field(ge=0, le=100)]
"""A variant's share of requests in integer percent: one meaning from the stack file to every
target's resource (SageMaker variant weights, Vertex AI traffic split, HTTPRoute weights)."""


class ConfigError(ValueError):
    """Invalid configuration. ``key`` is the dotted path (``sagemaker.variants[1].weight``)."""

    def __init__(self, key: str, message: str, value: Any = None) -> None:
        self.key = key
        self.message = message
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


def rule_error(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error for a rule across fields, located at the key it is about (raise it
    inside a model validator: the loc is relative to that model)."""
    return ValidationError.from_exception_data(
        "config",
        [
            InitErrorDetails(
                type=PydanticCustomError("config_rule", message.replace("{", "{{")),
                loc=loc,
                input=value,
            )
        ],
    )


@dataclass(frozen=True)
class Problem:
    """A broken rule found outside validation: where (relative to the model that owns the
    rule), what is wrong, and the value. A model that checks the rule for a nested part raises
    :meth:`error` with the part's location."""

    loc: tuple[str | int, ...]
    message: str
    value: Any = None

    def error(self, under: tuple[str | int, ...] = ()) -> ValidationError:
        """The :func:`rule_error` for this problem, its location prefixed with ``under``."""
        return rule_error((*under, *self.loc), self.message, self.value)


def check_unique_names(names: Sequence[str]) -> None:
    """The first half of :func:`check_split`, for targets that keep weights apart from the
    variants (Vertex AI's ``traffic``)."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"variant names must be unique; repeated: {', '.join(repeated)}")


def check_split(names: Sequence[str], weights: Mapping[str, int]) -> None:
    """The one rule for variants, on every target: names are unique, and the weights (integer
    percent of requests, by variant name; a name left out has 0) add up to 100.

    Raises :class:`ValueError` with the message users see.
    """
    check_unique_names(names)
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"{unknown} are not variant names; variants: {list(names)}")
    total = sum(weights.values())
    if total != 100:
        shares = ", ".join(f"{n}={weights.get(n, 0)}" for n in names)
        raise ValueError(f"weights are percent and must add up to 100, not {total} ({shares})")


class Weighted(Protocol):
    """A variant as :func:`weighted_split` reads it."""

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> int: ...


W = TypeVar("W", bound=Weighted)


def weighted_split(variants: list[W]) -> list[W]:
    """:func:`check_split` for variants that carry their weight (an ``AfterValidator``)."""
    check_split([v.name for v in variants], {v.name: v.weight for v in variants})
    return variants
