"""``ml-endpoints diff --stack NAME --base GIT_REF``: what a change does to a stack's resources.

The base revision is exported with ``git archive`` to a temporary directory and planned with
its own program and stack file (falling back to today's program when the base predates the
offline plan); the working tree is planned as is. Resources are matched by type and name and
each change is marked as the engine would carry it out: create, update, replace (saying whether
the old resource is deleted first) or delete. Replacements come from the providers' own rules
(:mod:`infra.stack.replacements`); a replaced Kubernetes provider replaces everything on it.
Changed inputs are listed by property path with their whole values (digests, tags, instance
types and weights are never shortened; long values wrap), component warnings are shown, and
traffic changes are spelled out (``prod/sagemaker challenger weight 0 -> 10%``).
``--json`` gives the same as data.
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
from infra.stack.plan import Plan, PlannedResource, plan_stack, traffic, wrap
from infra.stack.replacements import Action, Verdict, classify


class RevisionError(ValueError):
    """The base revision could not be read from git."""


@dataclass(frozen=True)
class ResourceChange:
    """One changed resource, its changed property paths (before, after) and what the engine
    does about them."""

    resource: PlannedResource
    changes: dict[str, tuple[Any, Any]]
    verdict: Verdict


@dataclass(frozen=True)
class PlanDiff:
    """Resources added, removed and changed from ``base`` to ``head``, and traffic moves."""

    stack: str
    added: list[PlannedResource] = field(default_factory=list)
    removed: list[PlannedResource] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    traffic: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    """Compare two plans of the same stack."""
    before, after = base.by_key(), head.by_key()
    changed = []
    for key in sorted(set(before) & set(after)):
        old, new = before[key], after[key]
        changes = dict(_changes(old.inputs, new.inputs))
        if changes:
            verdict = classify(
                new.type,
                old.inputs,
                new.inputs,
                changes,
                delete_before_replace=new.delete_before_replace,
            )
            changed.append(ResourceChange(new, changes, verdict))
    return PlanDiff(
        stack=head.stack,
        added=[after[k] for k in sorted(set(after) - set(before))],
        removed=[before[k] for k in sorted(set(before) - set(after))],
        changed=_cascade(changed, head),
        traffic=traffic_changes(head.stack, traffic(base), traffic(head)),
        warnings=list(head.warnings),
    )


def _cascade(changed: list[ResourceChange], head: Plan) -> list[ResourceChange]:
    """A replaced provider (another cluster) replaces every resource it manages."""
    replaced = {
        c.resource.urn
        for c in changed
        if c.resource.type.startswith("pulumi:providers:") and c.verdict.action is Action.REPLACE
    }
    if not replaced:
        return changed
    seen = {c.resource.urn for c in changed}
    result = []
    for change in changed:
        if change.resource.provider in replaced and change.verdict.action is not Action.REPLACE:
            change = ResourceChange(change.resource, change.changes, _provider_replaced(change))
        result.append(change)
    for resource in head.resources:
        if resource.provider in replaced and resource.urn not in seen:
            result.append(ResourceChange(resource, {}, _provider_replaced(None)))
    return result


def _provider_replaced(change: ResourceChange | None) -> Verdict:
    notes = change.verdict.notes if change is not None else ()
    return Verdict(
        Action.REPLACE,
        ("provider",),
        delete_first=False,
        notes=(*notes, "its provider is replaced (another cluster): created there anew"),
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


_MARKS = {
    Action.CREATE: "+ create ",
    Action.UPDATE: "~ update ",
    Action.REPLACE: "+- replace",
    Action.DELETE: "- delete ",
}


def render_diff(diff: PlanDiff, base_ref: str) -> str:
    """The diff for humans (and pull request comments): every change marked, values whole."""
    lines = [f"stack {diff.stack} against {base_ref}: {summary(diff)}"]
    lines += [_added(r) for r in diff.added]
    for change in diff.changed:
        resource, verdict = change.resource, change.verdict
        lines.append(f"{_MARKS[verdict.action]} {resource.type} {resource.name}{_how(verdict)}")
        for path, (old, new) in change.changes.items():
            forces = "  (forces replacement)" if path in verdict.replaced_by else ""
            lines += wrap(f"    {path}: {_shown(old)} -> {_shown(new)}{forces}", "        ")
        for note in verdict.notes:
            lines += wrap(f"    note: {note}", "        ")
        if verdict.unknown:
            lines += wrap(
                "    note: not in the replacement table, shown as an update: "
                + ", ".join(verdict.unknown),
                "        ",
            )
    lines += [f"{_MARKS[Action.DELETE]} {r.type} {r.name}" for r in diff.removed]
    if diff.warnings:
        lines.append("warnings:")
        for warning in diff.warnings:
            lines += wrap(f"  {warning}", "    ")
    if diff.traffic:
        lines.append("traffic:")
        lines += [f"  {line}" for line in diff.traffic]
    return "\n".join(lines) + "\n"


def _added(resource: PlannedResource) -> str:
    """A new resource: created, or imported when the stack adopts an existing one (Pulumi's
    ``import`` option; ``pulumi preview`` marks it ``= import``)."""
    if resource.import_id:
        return f"{IMPORT_MARK} {resource.type} {resource.name}  (adopts {resource.import_id})"
    return f"{_MARKS[Action.CREATE]} {resource.type} {resource.name}"


IMPORT_MARK = "= import "


def summary(diff: PlanDiff) -> str:
    """``1 to create, 2 to update, 1 to replace (1 deleting first), 0 to delete``; adopted
    resources are counted apart (``1 to import``), when there are any."""
    actions = [c.verdict for c in diff.changed]
    replaced = [v for v in actions if v.action is Action.REPLACE]
    first = sum(v.delete_first for v in replaced)
    updated = sum(v.action is Action.UPDATE for v in actions)
    imported = sum(bool(r.import_id) for r in diff.added)
    return (
        f"{len(diff.added) - imported} to create, "
        + (f"{imported} to import, " if imported else "")
        + f"{updated} to update, {len(replaced)} to replace"
        + (f" ({first} deleting first)" if first else "")
        + f", {len(diff.removed)} to delete"
    )


def _how(verdict: Verdict) -> str:
    if verdict.action is not Action.REPLACE:
        return ""
    if verdict.conflict:
        return f"  (would FAIL: {verdict.conflict})"
    return (
        "  (deletes the old one first)" if verdict.delete_first else "  (creates the new one first)"
    )


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def to_json(diff: PlanDiff, base_ref: str) -> str:
    """The diff as data (``ml-endpoints diff --json``)."""

    def entry(
        resource: PlannedResource, action: Action, change: ResourceChange | None
    ) -> dict[str, Any]:
        verdict = change.verdict if change else None
        return {
            "action": "import" if action is Action.CREATE and resource.import_id else action.value,
            "import_id": resource.import_id,
            "type": resource.type,
            "name": resource.name,
            "urn": resource.urn,
            "delete_first": bool(verdict and verdict.delete_first),
            "conflict": verdict.conflict if verdict else None,
            "replaced_by": list(verdict.replaced_by) if verdict else [],
            "notes": list(verdict.notes) if verdict else [],
            "changes": {
                p: {"before": o, "after": n}
                for p, (o, n) in (change.changes.items() if change else ())
            },
        }

    resources = [entry(r, Action.CREATE, None) for r in diff.added]
    resources += [entry(c.resource, c.verdict.action, c) for c in diff.changed]
    resources += [entry(r, Action.DELETE, None) for r in diff.removed]
    document = {
        "stack": diff.stack,
        "base": base_ref,
        "summary": summary(diff),
        "resources": resources,
        "warnings": diff.warnings,
        "traffic": diff.traffic,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


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
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError as exc:  # no such directory (run outside the checkout), no git
        raise RevisionError(f"git {' '.join(args)} in {cwd}: {exc.strerror}") from None
    if result.returncode != 0:
        raise RevisionError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout
