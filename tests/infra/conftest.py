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
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor


@dataclass
class Declared:
    """One resource the program declared, with the options the engine received."""

    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None
    urn: str
    delete_before_replace: bool = False
    dependencies: tuple[str, ...] = ()
    custom_timeouts: dict[str, str] = field(default_factory=dict)


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs (plus an id and an ARN-ish field) and remember everything.

    Pulumi's ``MockResourceArgs`` carries neither the parent nor the resource options, so
    :class:`RecordingMonitor` hands each registration request over before the mock sees it.
    """

    def __init__(self) -> None:
        self.resources: list[Declared] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.requests: dict[tuple[str, str], Any] = {}

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        outputs.setdefault("arn", f"arn:aws:mock:us-east-1:123456789012:{args.typ}/{args.name}")
        outputs.setdefault("name", args.inputs.get("name", args.name))
        request = self.requests.pop((args.typ, args.name), None)
        timeouts = getattr(request, "customTimeouts", None)
        self.resources.append(
            Declared(
                type=args.typ,
                name=args.name,
                inputs=dict(args.inputs),
                parent=(request.parent or None) if request is not None else None,
                provider=args.provider or None,
                urn=f"urn:pulumi:test::ml-endpoints::{args.typ}::{args.name}",
                delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                dependencies=tuple(getattr(request, "dependencies", ())),
                custom_timeouts={
                    k: getattr(timeouts, k)
                    for k in ("create", "update", "delete")
                    if timeouts is not None and getattr(timeouts, k)
                },
            )
        )
        return f"{args.name}-id", outputs

    # Pulumi's mock monitor iterates the failures list without a None check: return a plain dict.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": "123456789012",
                "userId": "test",
                "id": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/test",
            }
        if args.token == "aws:index/getRegion:getRegion":
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


class RecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, handing each registration request to the mocks first."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self._recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        self._recording.requests[(request.type, request.name)] = request
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def install_mocks(mocks: RecordingMocks) -> Iterator[RecordingMocks]:
    """Install ``mocks`` with a fresh event loop; the generator's end tears it down."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(
        mocks,
        project="ml-endpoints",
        stack="test",
        preview=False,
        monitor=RecordingMonitor(mocks),
    )
    yield mocks
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def pulumi_mocks() -> Iterator[RecordingMocks]:
    """Fresh mocks and a fresh event loop per test (Pulumi's mock state leaks otherwise).

    A test that takes this fixture must run its program to completion (``@pulumi.runtime.test``
    or resolve the outputs): a pending RPC left behind breaks the next test ("attached to a
    different loop").
    """
    yield from install_mocks(RecordingMocks())
