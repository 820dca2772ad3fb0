"""Pulumi unit-test harness: the shared mocks (:mod:`infra.stack.mocks`, what ``plan`` uses too),
reset for every test.

Usage::

    def test_something(pulumi_mocks):
        component = MyComponent("name", args)

        @pulumi.runtime.test  # or return pulumi.Output.all(...).apply(check)
        ...
        pulumi_mocks.resources  # every resource declared so far (type, name, inputs, parent)

Inputs are recorded in the wire form the engine would receive: camelCase keys, numbers as floats.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.stack.mocks import RecordingMocks, mocked


@pytest.fixture
def pulumi_mocks() -> Iterator[RecordingMocks]:
    """Fresh mocks and a fresh event loop per test (Pulumi's mock state leaks otherwise).

    A test that takes this fixture must run its program to completion (``@pulumi.runtime.test``
    or resolve the outputs): a pending RPC left behind breaks the next test ("attached to a
    different loop").
    """
    mocks = RecordingMocks()
    with mocked(mocks):
        yield mocks
