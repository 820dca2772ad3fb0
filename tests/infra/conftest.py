"""Pulumi unit-test harness: Pulumi's own mocks, reset for every test, recording what is declared.

Usage::

    def test_something(pulumi_mocks):
        component = MyComponent("name", args)

        @pulumi.runtime.test  # or return pulumi.Output.all(...).apply(check)
        ...
        pulumi_mocks.resources  # every resource declared so far (type, name, inputs, parent)

Inputs are recorded in the wire form the engine would receive: camelCase keys, numbers as floats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest


@dataclass
class Declared:
    """One resource the program declared."""

    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None
    urn: str


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs (plus an id and an ARN-ish field) and remember everything."""

    def __init__(self) -> None:
        self.resources: list[Declared] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        outputs.setdefault("arn", f"arn:aws:mock:us-east-1:123456789012:{args.typ}/{args.name}")
        outputs.setdefault("name", args.inputs.get("name", args.name))
        self.resources.append(
            Declared(
                type=args.typ,
                name=args.name,
                inputs=dict(args.inputs),
                parent=getattr(args, "parent", None) or None,
                provider=args.provider or None,
                urn=f"urn:pulumi:test::ml-endpoints::{args.typ}::{args.name}",
            )
        )
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> dict[str, Any] | tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/test",
                "userId": "test",
                "id": "123456789012",
            }
        if args.token in ("aws:index/getRegion:getRegion", "aws:index/getRegion:getRegion"):
            return {"name": "us-east-1", "region": "us-east-1", "id": "us-east-1"}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        return {}

    def of_type(self, type_token: str) -> list[Declared]:
        """Every declared resource of one type token."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Declared:
        """The single declared resource of ``type_token`` (fails if there are 0 or several)."""
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
        return found[0]


@pytest.fixture
def pulumi_mocks() -> Iterator[RecordingMocks]:
    """Fresh mocks and a fresh event loop per test (Pulumi's mock state leaks otherwise)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="ml-endpoints", stack="test", preview=False)
    yield mocks
    loop.close()
    asyncio.set_event_loop(None)
