"""Turn Pulumi's wire-form inputs (camelCase, numbers as floats, maps for tags) into boto3
requests, guided by the operation's shape in botocore's service model.

A wire key with no counterpart in the API shape raises, so a property the component declares
but the API does not know fails the replay instead of being dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape


class NoCounterpart(KeyError):
    """A declared property the API shape has no member for."""


def to_request(
    client: Any,
    operation: str,
    inputs: Mapping[str, Any],
    *,
    renames: Mapping[str, str] | None = None,
    provider_only: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The boto3 keyword arguments for ``operation`` from a resource's wire inputs.

    ``renames`` maps top-level wire keys whose API name differs (``name`` -> ``ModelName``);
    ``provider_only`` lists top-level keys the provider handles itself (``forceDelete``).
    """
    shape = client.meta.service_model.operation_model(operation).input_shape
    top = {k: v for k, v in inputs.items() if k not in provider_only}
    result = _convert(shape, top, renames or {}, operation)
    assert isinstance(result, dict)
    return result


def _convert(shape: Shape, value: Any, renames: Mapping[str, str], where: str) -> Any:
    if isinstance(shape, StructureShape):
        if isinstance(value, list) and len(value) == 1:  # Pulumi's one-element block lists
            value = value[0]
        members = {name.lower(): name for name in shape.members}
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            target = renames.get(key) or members.get(key.lower())
            if target is None:
                raise NoCounterpart(f"{where}.{key}: not in {shape.name} ({sorted(shape.members)})")
            out[target] = _convert(shape.members[target], item, {}, f"{where}.{key}")
        return out
    if isinstance(shape, ListShape):
        member = shape.member
        if isinstance(value, Mapping) and isinstance(member, StructureShape):
            key_name = "Key" if "Key" in member.members else "Name"
            return [{key_name: k, "Value": v} for k, v in value.items()]
        return [_convert(member, item, {}, f"{where}[]") for item in value]
    if isinstance(shape, MapShape):
        return {k: _convert(shape.value, v, {}, f"{where}.{k}") for k, v in value.items()}
    if shape.type_name in ("integer", "long"):
        assert float(value) == int(value), f"{where}: {value} is not an integer"
        return int(value)
    if shape.type_name in ("float", "double"):
        return float(value)
    return value
