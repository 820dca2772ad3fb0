"""Offline plan: run the real Pulumi program under Pulumi's mocks, no cloud credentials needed.

``ml-endpoints plan --stack NAME`` prints every resource the program declares for a stack, with
its key properties, as a tree; ``--json`` gives the full inputs (wire form, as the engine would
receive them). Each plan runs in a fresh Python process (``python -m infra.plan STACK DIR``):
Pulumi's runtime is global state, and a clean process also lets :mod:`infra.plan_diff` plan a
git revision with that revision's own code.

The mocks echo inputs as outputs and fill in what a cloud computes (ARNs, repository URLs,
cluster endpoints, service account e-mails) with fixed placeholders, so plans are
deterministic. Encrypted config values read as ``[secret]``; provider kubeconfigs are masked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pulumi

from infra.stack import NAMESPACE, SECRET_PLACEHOLDER, STACKS_DIR, load_stack, read_stack_file
from infra.stack import stack_file as stack_path

PROJECT = "ml-endpoints"
ACCOUNT = "123456789012"
REGION = "us-east-1"
_MASKED_INPUTS = {"kubeconfig"}
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 (a marker)
"""Pulumi's marker of a secret value on the wire."""

#: What the clouds compute and the components read back, per type token.
COMPUTED: dict[str, dict[str, Any]] = {
    "aws:eks/cluster:Cluster": {
        "endpoint": "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "Y2VydGlmaWNhdGUtYXV0aG9yaXR5"},
        "identities": [{"oidcs": [{"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/X"}]}],
    },
    "gcp:container/cluster:Cluster": {
        "endpoint": "203.0.113.10",
        "masterAuth": {"clusterCaCertificate": "Y2VydGlmaWNhdGUtYXV0aG9yaXR5"},
    },
}

#: What provider functions (invokes) return, per token.
CALLS: dict[str, dict[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": ACCOUNT,
        "id": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
    },
    "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION, "id": REGION},
    "aws:index/getPartition:getPartition": {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "id": "aws",
    },
}

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


@dataclass(frozen=True)
class Plan:
    """Every resource the program declares for one stack, sorted by URN."""

    stack: str
    resources: list[PlannedResource]

    def to_json(self) -> str:
        """Stable, indented JSON (what ``--json`` prints and the snapshots hold)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        resources = [
            PlannedResource(**{**r, "dependencies": tuple(r.get("dependencies", ()))})
            for r in data["resources"]
        ]
        return cls(stack=data["stack"], resources=resources)

    def by_key(self) -> dict[tuple[str, str], PlannedResource]:
        """Resources by (type, name): what stays the same resource across two plans."""
        return {(r.type, r.name): r for r in self.resources}


# ------------------------------------------------------------------------------ offline run


def plan_stack(stack: str, stacks_dir: Path = STACKS_DIR, *, code_dir: Path | None = None) -> Plan:
    """Plan ``stack`` in a fresh process; ``code_dir`` puts another checkout's ``infra`` first
    on the path (a git revision's own program)."""
    env = dict(os.environ)
    if code_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code_dir), *filter(None, [env.get("PYTHONPATH")])])
    result = subprocess.run(
        [sys.executable, "-m", "infra.plan", stack, str(stacks_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=code_dir,
        check=False,
    )
    if result.returncode != 0:
        raise PlanError(result.stderr.strip() or f"planning {stack} failed ({result.returncode})")
    return Plan.from_json(result.stdout)


def run_offline(stack: str, stacks_dir: Path = STACKS_DIR) -> Plan:
    """Run the program for ``stack`` under mocks in this process (once per process)."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.stack import wait_for_rpcs

    path = stack_path(stack, stacks_dir)
    config = read_stack_file(path)
    load_stack(config, str(path))  # precise errors before Pulumi wraps them
    mocks = _OfflineMocks()

    class Monitor(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (Pulumi's name)
            urn = self.make_urn(request.parent, request.type, request.name)
            mocks.requests[(request.type, request.name)] = (request, urn)
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=Monitor(mocks)
    )
    project_config = {k: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in project_config.items()}
    )
    from infra.program import main

    async def program() -> None:
        main()
        await wait_for_rpcs()

    try:
        loop.run_until_complete(program())
    finally:
        loop.close()
    return Plan(stack=stack, resources=sorted(mocks.planned, key=lambda r: r.urn))


class _OfflineMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that record every registration (see module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: dict[tuple[str, str], Any] = {}
        self.planned: list[PlannedResource] = []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        inputs = {k: v for k, v in args.inputs.items() if not k.startswith("__")}
        outputs = {**inputs, **COMPUTED.get(args.typ, {})}
        outputs.setdefault("name", args.name)
        name = outputs["name"]
        if args.typ.startswith("aws:"):
            service = args.typ.split(":")[1].split("/")[0]
            outputs.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}")
        if args.typ == "aws:ecr/repository:Repository":
            outputs["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"
        if args.typ == "gcp:serviceaccount/account:Account":
            email = f"{args.inputs['accountId']}@{args.inputs['project']}.iam.gserviceaccount.com"
            outputs["email"] = email
            outputs["name"] = f"projects/{args.inputs['project']}/serviceAccounts/{email}"
        request, urn = self.requests.pop((args.typ, args.name))
        self.planned.append(
            PlannedResource(
                urn=urn,
                type=args.typ,
                name=args.name,
                parent=(getattr(request, "parent", "") or None),
                provider=args.provider.rsplit("::", 1)[0] if args.provider else None,
                inputs=_clean(inputs, masked=args.typ.startswith("pulumi:providers:")),
                dependencies=tuple(sorted(getattr(request, "dependencies", ()))),
            )
        )
        return f"{args.name}-id", outputs

    # Pulumi's mock monitor iterates a returned failures list without a None check: a plain
    # dict (no failures) is what works.
    def call(self, args: Any) -> dict[str, Any]:  # type: ignore[override]
        return dict(CALLS.get(args.token, {}))


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
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 100 else text[:97] + "..."


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
        lines.append(
            f"{prefix}{branch}{resource.type} {resource.name}" + (f"  {props}" if props else "")
        )
        kids = children.get(resource.urn, [])
        for index, child in enumerate(kids):
            walk(child, prefix + ("    " if last else "|   "), index == len(kids) - 1)

    for index, root in enumerate(roots):
        walk(root, "", index == len(roots) - 1)
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
    """``python -m infra.plan STACK STACKS_DIR``: the plan as JSON on stdout."""
    stack, stacks_dir = (argv if argv is not None else sys.argv[1:])[:2]
    try:
        plan = run_offline(stack, Path(stacks_dir))
    except Exception as exc:  # reported to the parent process
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(plan.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
