"""The offline plans of the repository's stacks, computed once per test process (in parallel:
each plan is a fresh Python process running the Pulumi program under mocks)."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from infra.stack.plan import Plan, plan_stack

ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "stacks"
STACKS = ("dev", "staging", "prod")


@functools.cache
def stack_plans() -> dict[str, Plan]:
    """Stack name -> its plan."""
    with ThreadPoolExecutor(max_workers=len(STACKS)) as pool:
        plans = pool.map(lambda stack: plan_stack(stack, STACKS_DIR), STACKS)
        return dict(zip(STACKS, plans, strict=True))


TEST_STACKS_DIR = Path(__file__).parent / "stacks"
GCR_STACK = "gcr"
"""``tests/infra/stacks/Pulumi.gcr.yaml``: images on ``eu.gcr.io``, served by the gcr.io
repository the stack declares."""


@functools.cache
def options_plan() -> Plan:
    """The plan of ``tests/infra/stacks/Pulumi.options.yaml``: the options the repository's
    stacks leave out, so that every type and property the program can declare is planned."""
    return plan_stack("options", TEST_STACKS_DIR)


@functools.cache
def gcr_plan() -> Plan:
    """The plan of the gcr.io test stack (snapshotted as ``snapshots/gcr.json``)."""
    return plan_stack(GCR_STACK, TEST_STACKS_DIR)
