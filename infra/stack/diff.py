"""``ml-endpoints diff --stack NAME --base GIT_REF``: what a change does to a stack's resources.

The base revision is exported with ``git archive`` to a temporary directory and planned with
its own program and stack file (falling back to today's program when the base predates the
offline plan); the working tree is planned as is. Resources are matched by type and name;
changed inputs are listed by property path, and traffic changes are spelled out
(``prod/sagemaker challenger weight 0 -> 10%``).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.stack.files import STACKS_DIR, stack_file
from infra.stack.plan import Plan, PlannedResource, plan_stack, traffic

MAX_CHANGES_SHOWN = 20


class RevisionError(ValueError):
    """The base revision could not be read from git."""


@dataclass(frozen=True)
class ResourceChange:
    """One changed resource and its changed property paths (before, after)."""

    resource: PlannedResource
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class PlanDiff:
    """Resources added, removed and changed from ``base`` to ``head``, and traffic moves."""

    stack: str
    added: list[PlannedResource] = field(default_factory=list)
    removed: list[PlannedResource] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    traffic: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    """Compare two plans of the same stack."""
    before, after = base.by_key(), head.by_key()
    changed = []
    for key in sorted(set(before) & set(after)):
        changes = dict(_changes(before[key].inputs, after[key].inputs))
        if changes:
            changed.append(ResourceChange(after[key], changes))
    return PlanDiff(
        stack=head.stack,
        added=[after[k] for k in sorted(set(after) - set(before))],
        removed=[before[k] for k in sorted(set(before) - set(after))],
        changed=changed,
        traffic=traffic_changes(head.stack, traffic(base), traffic(head)),
    )


def traffic_changes(
    stack: str, before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]]
) -> list[str]:
    """``prod/sagemaker challenger weight 0 -> 10%`` per variant whose share moved."""
    lines = []
    for target in sorted(set(before) | set(after)):
        old, new = before.get(target, {}), after.get(target, {})
        for variant in sorted(set(old) | set(new)):
            a, b = old.get(variant), new.get(variant)
            if a != b:
                shown_a = "absent" if a is None else f"{a:g}"
                shown_b = "absent" if b is None else f"{b:g}%"
                lines.append(f"{stack}/{target} {variant} weight {shown_a} -> {shown_b}")
    return lines


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _flatten(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    old, new = dict(_flatten(before)), dict(_flatten(after))
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            yield path, (old.get(path), new.get(path))


def render_diff(diff: PlanDiff, base_ref: str) -> str:
    """The diff for humans (and pull request comments)."""
    counts = (
        f"{len(diff.added)} to add, {len(diff.removed)} to remove, {len(diff.changed)} to change"
    )
    lines = [f"stack {diff.stack} against {base_ref}: {counts}"]
    lines += [f"+ {r.type} {r.name}" for r in diff.added]
    lines += [f"- {r.type} {r.name}" for r in diff.removed]
    for change in diff.changed:
        lines.append(f"~ {change.resource.type} {change.resource.name}")
        items = list(change.changes.items())
        for path, (old, new) in items[:MAX_CHANGES_SHOWN]:
            lines.append(f"    {path}: {_shown(old)} -> {_shown(new)}")
        if len(items) > MAX_CHANGES_SHOWN:
            lines.append(f"    ... and {len(items) - MAX_CHANGES_SHOWN} more")
    if diff.traffic:
        lines.append("traffic:")
        lines += [f"  {line}" for line in diff.traffic]
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 90 else text[:87] + "..."


def plan_at_ref(stack: str, ref: str, stacks_dir: Path = STACKS_DIR) -> Plan:
    """Plan ``stack`` as it was at git revision ``ref`` (empty if the stack did not exist)."""
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd=stacks_dir).strip())
    relative = stack_file(stack, stacks_dir).resolve().relative_to(root)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise RevisionError(f"git archive {ref}: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory(prefix="ml-endpoints-base-") as tmp:
        checkout = Path(tmp)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(checkout, filter="data")
        if not (checkout / relative).exists():
            return Plan(stack=stack, resources=[])
        own_code = any(
            (checkout / "infra" / module).exists() for module in ("stack/plan.py", "plan.py")
        )
        return plan_stack(
            stack, checkout / relative.parent, code_dir=checkout if own_code else None
        )


def _git(args: list[str], cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RevisionError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout
