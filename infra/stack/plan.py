"""Offline plan: run the real Pulumi program under Pulumi's mocks, no cloud credentials needed.

``ml-endpoints plan --stack NAME`` prints every resource the program declares for a stack, with
its key properties, as a tree; ``--json`` gives the full inputs (wire form, as the engine would
receive them). Each plan runs in a fresh Python process (``python -m infra.stack.plan STACK
DIR``): Pulumi's runtime is global state, and a clean process also lets :mod:`infra.stack.diff`
plan a git revision with that revision's own code.

The stack file is read and validated once; the program's declarations then run under
:mod:`infra.stack.mocks` (the tests' mocks too), which fill in what a cloud computes with fixed
placeholders, so plans are deterministic. Encrypted config values read as ``[secret]``;
provider kubeconfigs are masked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra.stack.config import NAMESPACE, load_stack
from infra.stack.files import SECRET_PLACEHOLDER, STACKS_DIR, read_stack_file, stack_file
from infra.stack.mocks import Declared, RecordingMocks, mocked
from infra.validation import ConfigError

_MASKED_INPUTS = {"kubeconfig"}
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 (a marker)
"""Pulumi's marker of a secret value on the wire."""

#: Properties the tree shows per type token (dotted paths; ``[]`` walks a list).
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:ecr/repository:Repository": (
        "name",
        "imageTagMutability",
        "imageScanningConfiguration.scanOnPush",
    ),
    "aws:sagemaker/model:Model": ("primaryContainer.image", "primaryContainer.modelDataUrl"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "productionVariants[].variantName",
        "productionVariants[].instanceType",
        "productionVariants[].initialInstanceCount",
        "productionVariants[].initialVariantWeight",
        "dataCaptureConfig.initialSamplingPercentage",
    ),
    "aws:sagemaker/endpoint:Endpoint": ("name",),
    "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment": (
        "endpoint_name",
        "config.ProductionVariants[].VariantName",
        "config.ProductionVariants[].InstanceType",
        "config.ProductionVariants[].InitialInstanceCount",
        "weights",
        "config.DataCaptureConfig.InitialSamplingPercentage",
    ),
    "aws:appautoscaling/target:Target": ("resourceId", "minCapacity", "maxCapacity"),
    "aws:eks/cluster:Cluster": ("version", "vpcConfig.publicAccessCidrs"),
    "aws:eks/nodeGroup:NodeGroup": (
        "instanceTypes",
        "scalingConfig.minSize",
        "scalingConfig.maxSize",
        "taints[].key",
    ),
    "gcp:container/cluster:Cluster": ("location", "releaseChannel.channel"),
    "gcp:container/nodePool:NodePool": (
        "nodeConfig.machineType",
        "nodeConfig.guestAccelerators[].type",
        "autoscaling.minNodeCount",
        "autoscaling.maxNodeCount",
        "nodeConfig.taints[].key",
    ),
    "gcp:artifactregistry/repository:Repository": ("repositoryId", "dockerConfig.immutableTags"),
    "gcp:vertex/aiEndpoint:AiEndpoint": ("displayName", "region"),
    "kubernetes:apps/v1:Deployment": (
        "metadata.namespace",
        "spec.template.spec.containers[].image",
        "spec.template.spec.containers[].resources.limits",
    ),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ("spec.minReplicas", "spec.maxReplicas"),
    "kubernetes:policy/v1:PodDisruptionBudget": ("spec.maxUnavailable",),
    "kubernetes:core/v1:Service": ("spec.type",),
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": (
        "spec.rules[].backendRefs[].name",
        "spec.rules[].backendRefs[].weight",
    ),
}
VERTEX_DEPLOYMENT_KEYS = ("variants[].name", "variants[].image", "variants[].min_replicas")


CONFIG_ERROR = "ml-endpoints config error: "
"""How the planning process reports an invalid stack to its parent (then raised again there)."""


class PlanError(RuntimeError):
    """The offline plan could not be produced (invalid stack, program error)."""


@dataclass(frozen=True)
class PlannedResource:
    """One declared resource: inputs in wire form, parent and provider as URNs."""

    urn: str
    type: str
    name: str
    parent: str | None
    provider: str | None
    inputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()
    delete_before_replace: bool | None = None
    """The program's ``delete_before_replace`` option, None when it set none."""
    import_id: str | None = None
    """The program's ``import`` option: the ID of the existing resource the stack adopts
    instead of creating one (``= import`` in ``pulumi preview``); None: created."""
    protect: bool = False
    """The program's ``protect`` option: Pulumi refuses to delete or replace the resource."""
    aliases: tuple[str, ...] = ()
    """Names the resource had before (its ``aliases`` option): a rename that deletes nothing."""


@dataclass(frozen=True)
class Plan:
    """Every resource the program declares for one stack, sorted by URN, and the warnings
    the components logged (``pulumi.log.warn``), which a reviewer must see too."""

    stack: str
    resources: list[PlannedResource]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Stable, indented JSON (what ``--json`` prints and the snapshots hold)."""
        data = asdict(self)
        for resource in data["resources"]:  # options are written only where they are set
            for option, unset in (("import_id", None), ("protect", False), ("aliases", ())):
                if resource[option] == unset:
                    del resource[option]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        resources = [
            PlannedResource(
                **{
                    **r,
                    "dependencies": tuple(r.get("dependencies", ())),
                    "aliases": tuple(r.get("aliases", ())),
                }
            )
            for r in data["resources"]
        ]
        return cls(stack=data["stack"], resources=resources, warnings=data.get("warnings", []))

    def by_key(self) -> dict[tuple[str, str], PlannedResource]:
        """Resources by (type, name): what stays the same resource across two plans."""
        return {(r.type, r.name): r for r in self.resources}


# ------------------------------------------------------------------------------ offline run


def plan_stack(stack: str, stacks_dir: Path = STACKS_DIR, *, code_dir: Path | None = None) -> Plan:
    """Plan ``stack`` in a fresh process; ``code_dir`` puts another checkout's ``infra`` first
    on the path (a git revision's own program, which may predate :mod:`infra.stack`)."""
    env = dict(os.environ)
    module = "infra.stack.plan"
    if code_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code_dir), *filter(None, [env.get("PYTHONPATH")])])
        if not (code_dir / "infra" / "stack" / "plan.py").exists():
            module = "infra.plan"
    result = subprocess.run(
        [sys.executable, "-m", module, stack, str(stacks_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=code_dir,
        check=False,
    )
    if result.returncode == 2 and result.stderr.startswith(CONFIG_ERROR):
        error = json.loads(result.stderr.removeprefix(CONFIG_ERROR).splitlines()[0])
        raise ConfigError(error["key"], error["message"], error["value"])
    if result.returncode != 0:
        raise PlanError(result.stderr.strip() or f"planning {stack} failed ({result.returncode})")
    return Plan.from_json(result.stdout)


def run_offline(stack: str, stacks_dir: Path = STACKS_DIR) -> Plan:
    """Run the program for ``stack`` under mocks in this process (once per process)."""
    from pulumi.runtime.stack import wait_for_rpcs

    from infra.stack.program import run

    path = stack_file(stack, stacks_dir)
    config = read_stack_file(path)
    typed = load_stack(config, str(path))
    mocks = RecordingMocks()
    with mocked(mocks, stack=stack) as loop:
        # What the engine hands the program: the stack's own keys (components read nothing else)
        project_config = {k: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
        pulumi.runtime.set_all_config(
            {
                k: v if isinstance(v, str) else json.dumps(v, default=str)
                for k, v in project_config.items()
            }
        )

        async def program() -> None:
            run(typed)
            await wait_for_rpcs()

        loop.run_until_complete(program())
    return recorded_plan(stack, mocks)


def recorded_plan(stack: str, mocks: RecordingMocks) -> Plan:
    """The plan of what a program run under ``mocks`` declared (secrets masked)."""
    planned = [_planned(resource) for resource in mocks.resources]
    return Plan(
        stack=stack,
        resources=sorted(planned, key=lambda r: r.urn),
        warnings=list(dict.fromkeys(mocks.warnings)),
    )


def _planned(resource: Declared) -> PlannedResource:
    inputs = {k: v for k, v in resource.inputs.items() if not k.startswith("__")}
    provider = resource.provider
    return PlannedResource(
        urn=resource.urn,
        type=resource.type,
        name=resource.name,
        parent=resource.parent,
        provider=provider.rsplit("::", 1)[0] if provider else None,
        inputs=_clean(
            _secrets_masked(inputs, resource.wire),
            masked=resource.type.startswith("pulumi:providers:"),
        ),
        dependencies=tuple(sorted(resource.dependencies)),
        delete_before_replace=resource.delete_before_replace,
        import_id=resource.import_id,
        protect=resource.protect,
        aliases=resource.aliases,
    )


def _secrets_masked(value: Any, wire: Any, inside: bool = False) -> Any:
    """``value`` with each secret replaced by ``[secret]`` where the engine receives it (the
    ``wire`` form): only the secret itself, not the whole top-level property that Pulumi's
    deserialisation wraps around it. Inside such a wrapper, whatever the wire form does not
    account for is masked."""
    if _is_secret(wire):
        return SECRET_PLACEHOLDER
    if _is_secret(value):
        value, inside = value.get("value"), True
    if isinstance(value, Mapping) and isinstance(wire, Mapping):
        return {k: _secrets_masked(v, wire.get(k), inside) for k, v in value.items()}
    if isinstance(value, list) and isinstance(wire, list) and len(value) == len(wire):
        return [_secrets_masked(v, w, inside) for v, w in zip(value, wire, strict=True)]
    if inside and value is not None and (isinstance(value, Mapping | list) or wire is None):
        return SECRET_PLACEHOLDER
    return value


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and _SECRET_SIG in value


def _clean(value: Any, *, masked: bool = False, key: str = "") -> Any:
    """Integral floats as ints, secrets and provider kubeconfigs masked."""
    if masked and key in _MASKED_INPUTS:
        return SECRET_PLACEHOLDER
    if isinstance(value, Mapping):
        if _SECRET_SIG in value:
            return SECRET_PLACEHOLDER
        return {k: _clean(v, masked=masked, key=k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, masked=masked) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ------------------------------------------------------------------------------------- tree


def pick(value: Any, path: str) -> list[Any]:
    """Values at a dotted ``path`` (``a.b[].c``: every element of the list ``b``)."""
    found = [value]
    for part in path.split("."):
        each = part.endswith("[]")
        key = part.removesuffix("[]")
        step = []
        for item in found:
            if isinstance(item, Mapping) and item.get(key) is not None:
                child = item[key]
                step.extend(child if each and isinstance(child, list) else [child])
        found = step
    return found


def key_properties(resource: PlannedResource) -> str:
    """``path=value`` pairs worth reading for this resource type."""
    paths = KEY_PROPERTIES.get(resource.type)
    if paths is None and resource.type.endswith(":VertexDeployment"):
        paths = (*VERTEX_DEPLOYMENT_KEYS, "traffic")
    shown = []
    for path in paths or ():
        values = pick(resource.inputs, path)
        if values:
            text = ",".join(_short(v) for v in values)
            shown.append(f"{path.replace('[]', '')}={text}")
    return "  ".join(shown)


def _short(value: Any) -> str:
    """The whole value: digests, tags, types and weights are what a reviewer checks."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


WIDTH = 100
"""Output lines wrap at this width; values are never cut."""


def wrap(line: str, indent: str) -> list[str]:
    """``line`` folded at :data:`WIDTH` between words (continuations start with ``indent``); a
    value longer than a line is split across lines, never cut."""
    if len(line) <= WIDTH:
        return [line]
    return textwrap.wrap(
        line,
        WIDTH,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    )


def render_tree(plan: Plan, source: str = "") -> str:
    """The plan as an indented tree of components and their resources."""
    children: dict[str | None, list[PlannedResource]] = {}
    for resource in plan.resources:
        children.setdefault(resource.parent, []).append(resource)
    urns = {r.urn for r in plan.resources}
    roots = [r for r in plan.resources if r.parent not in urns]
    lines = [
        f"stack {plan.stack}: {len(plan.resources)} resources" + (f" ({source})" if source else "")
    ]

    def walk(resource: PlannedResource, prefix: str, last: bool) -> None:
        branch = "`-- " if last else "|-- "
        props = key_properties(resource)
        adopted = f"  = import {resource.import_id}" if resource.import_id else ""
        line = f"{prefix}{branch}{resource.type} {resource.name}{adopted}" + (
            f"  {props}" if props else ""
        )
        lines.extend(wrap(line, prefix + ("    " if last else "|   ") + "    "))
        kids = children.get(resource.urn, [])
        for index, child in enumerate(kids):
            walk(child, prefix + ("    " if last else "|   "), index == len(kids) - 1)

    for index, root in enumerate(roots):
        walk(root, "", index == len(roots) - 1)
    if plan.warnings:
        lines.append("warnings:")
        for warning in plan.warnings:
            lines.extend(wrap(f"  {warning}", "    "))
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- traffic


def traffic(plan: Plan) -> dict[str, dict[str, float]]:
    """Percent of requests per variant, per target, as the plan routes them."""
    split: dict[str, dict[str, float]] = {}
    services: dict[str, str] = {}
    for resource in plan.resources:
        if resource.type == "kubernetes:core/v1:Service":
            labels = resource.inputs.get("metadata", {}).get("labels", {})
            if "ml-endpoints.io/variant" in labels:
                services[resource.inputs["metadata"]["name"]] = labels["ml-endpoints.io/variant"]
    for resource in plan.resources:
        if resource.type == "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
            variants = resource.inputs.get("productionVariants", [])
            total = sum(float(v.get("initialVariantWeight", 0)) for v in variants) or 1.0
            split["sagemaker"] = {
                v["variantName"]: round(float(v.get("initialVariantWeight", 0)) * 100 / total, 2)
                for v in variants
            }
        elif resource.type.endswith(":SageMakerDeployment"):
            given = resource.inputs.get("weights", {})
            order = pick(resource.inputs, "config.ProductionVariants[].VariantName")
            weights = {k: float(given[k]) for k in order if k in given}
            total = sum(weights.values()) or 1.0
            split["sagemaker"] = {k: round(w * 100 / total, 2) for k, w in weights.items()}
        elif resource.type.endswith(":VertexDeployment"):
            split["vertex"] = {k: float(v) for k, v in resource.inputs.get("traffic", {}).items()}
        elif resource.type == "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute":
            refs = pick(resource.inputs, "spec.rules[].backendRefs[]")
            total = sum(float(r.get("weight", 1)) for r in refs) or 1.0
            split["kubernetes"] = {
                services.get(r["name"], r["name"]): round(
                    float(r.get("weight", 1)) * 100 / total, 2
                )
                for r in refs
            }
    return split


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.stack.plan STACK STACKS_DIR``: the plan as JSON on stdout."""
    stack, stacks_dir = (argv if argv is not None else sys.argv[1:])[:2]
    try:
        plan = run_offline(stack, Path(stacks_dir))
    except ConfigError as exc:  # the parent raises it again: one error style for every command
        error = {"key": exc.key, "message": exc.message, "value": exc.value}
        print(CONFIG_ERROR + json.dumps(error, default=str), file=sys.stderr)
        return 2
    except Exception as exc:  # reported to the parent process
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(plan.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
