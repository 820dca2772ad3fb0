"""Infrastructure subcommands of ``ml-endpoints``, registered through the ``ml_endpoints.commands``
entry point (:func:`register`, see :mod:`serving.cli`):

- ``verify --stack NAME``: check a deployed stack (each target contributes one verifier);
- ``promote SRC DST`` / ``rollback DST``: move a release between stack files (a pull request);
- ``plan --stack NAME [--json]`` / ``diff --stack NAME --base REF [--json]``: the Pulumi program run
  offline under mocks, for reviewers without cloud credentials;
- ``validate [--stack NAME]``: the policy pack's checks on the offline plan of each stack;
- ``gc --stack NAME [--dry-run]``: delete the SageMaker configurations and models of the stack's
  endpoint that no endpoint uses (updates never delete them, :mod:`infra.aws.garbage`);
- ``canary --stack NAME``: watch the Kubernetes challenger against its champion in Prometheus
  after a weight change (:mod:`infra.monitoring.canary`), exit 1 with the reason when worse.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from infra.validation import ConfigError

if TYPE_CHECKING:
    from infra.stack.components import Components

#: Target -> (``module:function`` with signature ``(components, settings, stack_dir) ->
#: findings | None``, the extras it needs). ``components``: the stack's typed component args;
#: ``settings``: the stack file's config (provider keys such as ``aws:region``). None: the
#: stack does not deploy that target.
VERIFIERS: dict[str, tuple[str, str]] = {
    "sagemaker": ("infra.aws.verify:verify_stack", "aws,infra"),
    "vertex": ("infra.gcp.verify:verify_stack", "gcp,infra"),
}
DEFAULT_STACKS = ("dev", "staging", "prod")


class Finding(Protocol):
    """What a verifier reports per check."""

    @property
    def subject(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...


Verifier = Callable[["Components", Mapping[str, Any], Path], "list[Finding] | None"]


def _stacks_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stacks-dir",
        type=Path,
        default=Path("stacks"),
        help="directory holding the stack files (default: stacks)",
    )


def register(subparsers: Any) -> None:
    """Add the infrastructure subcommands to ``ml-endpoints``' subparsers."""
    verify_ = subparsers.add_parser(
        "verify",
        help="check a deployed stack: status, rollbacks, weights, and a sample invocation",
        description="Verify every endpoint a stack configures (SageMaker, Vertex AI). Cloud "
        "credentials come from the usual AWS and Google settings; the stack's aws:region wins "
        "over the default region.",
    )
    verify_.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    _stacks_dir(verify_)
    verify_.set_defaults(func=lambda args: verify(args.stack, args.stacks_dir))

    gc_ = subparsers.add_parser(
        "gc",
        help="delete the stack endpoint's SageMaker configurations and models no endpoint uses",
        description="Updates keep every endpoint configuration and model (after a rollback the "
        "old ones serve). This deletes those created for the stack's endpoint that no endpoint "
        "of the region runs or is deploying, older than --min-age-minutes.",
    )
    gc_.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    gc_.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    gc_.add_argument(
        "--min-age-minutes",
        type=float,
        default=60,
        help="keep younger ones: a pulumi up in flight may be about to deploy them (default 60)",
    )
    _stacks_dir(gc_)
    gc_.set_defaults(func=_guarded(garbage_collect))

    promote_ = subparsers.add_parser(
        "promote",
        help="copy the release of stack SRC into stack DST (edits DST's file in place)",
        description="Copy ml-endpoints:release (model, image digest, variants and weights) "
        "from Pulumi.SRC.yaml to Pulumi.DST.yaml, keeping DST's current release as "
        "ml-endpoints:previous_release for `rollback`. Comments and key order are kept.",
    )
    promote_.add_argument("src", help="source stack (e.g. staging)")
    promote_.add_argument("dst", help="target stack (e.g. prod)")
    promote_.add_argument("--dry-run", action="store_true", help="print, do not write")
    promote_.add_argument(
        "--force",
        action="store_true",
        help="promote out of the order dev -> staging -> prod (skipping a stage)",
    )
    _stacks_dir(promote_)
    promote_.set_defaults(func=_guarded(_promotion))

    rollback_ = subparsers.add_parser(
        "rollback",
        help="restore the release a stack ran before its last promotion",
        description="Put ml-endpoints:previous_release back as ml-endpoints:release.",
    )
    rollback_.add_argument("dst", help="stack to roll back (e.g. prod)")
    rollback_.add_argument("--dry-run", action="store_true", help="print, do not write")
    _stacks_dir(rollback_)
    rollback_.set_defaults(func=_guarded(_promotion))

    plan_ = subparsers.add_parser(
        "plan",
        help="the resources a stack declares, computed offline under Pulumi's mocks",
        description="Run the Pulumi program for a stack under Pulumi's mocks (no cloud "
        "credentials, no Pulumi CLI) and print the resources as a tree.",
    )
    plan_.add_argument("--stack", required=True)
    plan_.add_argument("--json", action="store_true", help="every input, as JSON")
    _stacks_dir(plan_)
    plan_.set_defaults(
        func=_guarded(lambda args: _plan(args.stack, args.stacks_dir, as_json=args.json))
    )

    diff_ = subparsers.add_parser(
        "diff",
        help="resources added, removed and changed against a git revision (offline)",
    )
    diff_.add_argument("--stack", required=True)
    diff_.add_argument("--base", required=True, help="git revision to compare with")
    _stacks_dir(diff_)
    diff_.add_argument("--json", action="store_true", help="the diff as JSON")
    diff_.set_defaults(
        func=_guarded(lambda args: _diff(args.stack, args.base, args.stacks_dir, as_json=args.json))
    )

    canary_ = subparsers.add_parser(
        "canary",
        help="watch the Kubernetes challenger against its champion in Prometheus",
        description="Read both variants' signals from Prometheus for "
        "ml-endpoints:kubernetes.monitoring.canary.window and compare them: exit 0 when the "
        "challenger is no worse, 1 when it is (the reasons are printed), 3 when there was too "
        "little traffic for a verdict, 2 when the stack or Prometheus cannot be used. A "
        "challenger with weight 0 gets no traffic: nothing to watch (exit 0).",
    )
    canary_.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    canary_.add_argument("--prometheus", help="Prometheus URL (default: the canary config's)")
    canary_.add_argument("--champion", help="baseline variant (default: the largest weight)")
    canary_.add_argument("--challenger", help="watched variant (default: the next largest)")
    canary_.add_argument(
        "--no-wait", action="store_true", help="judge the trailing window now, do not watch"
    )
    canary_.add_argument(
        "--if-configured",
        action="store_true",
        help="exit 0 when the stack sets no kubernetes.monitoring.canary (for the deploy "
        "workflow, which runs it for every stack)",
    )
    _stacks_dir(canary_)
    canary_.set_defaults(func=_guarded(canary))

    validate_ = subparsers.add_parser(
        "validate",
        help="run the policy pack's checks on the offline plan of each stack",
    )
    validate_.add_argument(
        "--stack", action="append", help="stack to check (repeatable; default: every stack)"
    )
    _stacks_dir(validate_)
    validate_.set_defaults(
        func=_guarded(
            lambda args: validate_stacks(
                args.stack or _stack_names(args.stacks_dir), args.stacks_dir
            )
        )
    )


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` with the errors users cause turned into one line and an exit code:
    0 ok, 1 checks failed or the program failed to plan, 2 invalid configuration or a refused
    promotion."""

    def run(args: argparse.Namespace) -> int:
        from infra.stack.diff import RevisionError
        from infra.stack.plan import PlanError
        from infra.stack.promotion import PromotionError

        try:
            return command(args)
        except ConfigError as exc:
            print(f"ml-endpoints {args.command}: invalid configuration: {exc}", file=sys.stderr)
            return 2
        except (PromotionError, RevisionError) as exc:
            print(f"ml-endpoints {args.command}: {exc}", file=sys.stderr)
            return 2
        except PlanError as exc:
            print(f"ml-endpoints {args.command}: {exc}", file=sys.stderr)
            return 1

    return run


def _stack_names(stacks_dir: Path) -> list[str]:
    found = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
    ordered = [s for s in DEFAULT_STACKS if s in found]
    return ordered + [s for s in found if s not in ordered]


# ---------------------------------------------------------------------------------- verify


def garbage_collect(args: argparse.Namespace) -> int:
    """``ml-endpoints gc``: print what is (or would be) deleted; 0 on success."""
    import boto3

    from infra.aws.garbage import collect, find_garbage
    from infra.stack.config import load_stack
    from infra.stack.files import read_stack_file, stack_file

    path = stack_file(args.stack, args.stacks_dir)
    settings = read_stack_file(path)
    stack = load_stack(settings, str(path))
    if stack.sagemaker is None:
        print(
            f"ml-endpoints gc: stack {args.stack!r} has no ml-endpoints:sagemaker", file=sys.stderr
        )
        return 2
    session = boto3.Session(
        region_name=settings.get("aws:region"), profile_name=settings.get("aws:profile")
    )
    sagemaker = session.client("sagemaker")
    garbage = find_garbage(
        sagemaker, stack.sagemaker.endpoint_name, min_age_s=args.min_age_minutes * 60
    )
    verb = "would delete" if args.dry_run else "delete"
    for name in garbage.configs:
        print(f"{verb} endpoint configuration {name}")
    for name in garbage.models:
        print(f"{verb} model {name}")
    for name in garbage.in_use:
        print(f"keep endpoint configuration {name} (in use)")
    if not args.dry_run:
        collect(sagemaker, garbage)
    return 0


def verify(stack: str, stacks_dir: Path) -> int:
    """Print one line per check; 0 if all pass, 1 if any fails, 2 on configuration errors."""
    from infra.stack.components import compose
    from infra.stack.config import load_stack
    from infra.stack.files import read_stack_file, stack_file

    path = stack_file(stack, stacks_dir)
    try:
        settings = read_stack_file(path)
        components = compose(load_stack(settings, str(path)))
    except ConfigError as exc:
        print(f"ml-endpoints verify: invalid configuration: {exc}", file=sys.stderr)
        return 2
    results: dict[str, list[Finding] | None] = {}
    for target in VERIFIERS:
        try:
            results[target] = _verifier(target)(components, settings, stacks_dir)
        except ModuleNotFoundError as exc:
            extras = VERIFIERS[target][1]
            print(
                f"ml-endpoints verify: {exc.name} is not installed; "
                f"pip install 'ml-endpoints[{extras}]'",
                file=sys.stderr,
            )
            return 2
        except ConfigError as exc:  # what verify needs beyond the deployment (a sample)
            print(f"ml-endpoints verify: invalid configuration: {path}: {exc}", file=sys.stderr)
            return 2
    findings = [(t, f) for t, found in results.items() if found is not None for f in found]
    if not any(found is not None for found in results.values()):
        keys = ", nor ".join(f"(ml-endpoints:{t})" for t in VERIFIERS)
        print(
            f"ml-endpoints verify: stack {stack!r} configures nothing to verify {keys}",
            file=sys.stderr,
        )
        return 2
    for target, finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        print(f"{mark} {target} {finding.subject}: {finding.detail}")
    failed = sum(not f.ok for _, f in findings)
    if failed:
        print(f"ml-endpoints verify: {failed} of {len(findings)} checks failed", file=sys.stderr)
        return 1
    print(f"ml-endpoints verify: all {len(findings)} checks passed")
    return 0


def _verifier(target: str) -> Verifier:
    module, _, function = VERIFIERS[target][0].partition(":")
    verifier: Verifier = getattr(importlib.import_module(module), function)
    return verifier


# ------------------------------------------------------------------------------------ canary


def canary(args: argparse.Namespace) -> int:
    """The canary watch of the stack's Kubernetes deployment (exit codes: the parser's text)."""
    from infra.k8s.observability import deployment_matchers
    from infra.monitoring.canary import watch
    from infra.monitoring.prometheus import PrometheusClient, PrometheusError
    from infra.stack.components import compose
    from infra.stack.config import load_stack
    from infra.stack.files import read_stack_file, stack_file

    def refuse(message: str) -> int:
        print(f"ml-endpoints canary: {message}", file=sys.stderr)
        return 2

    path = stack_file(args.stack, args.stacks_dir)
    deployment = compose(load_stack(read_stack_file(path), str(path))).kubernetes
    config = None
    if deployment is not None and deployment.monitoring is not None:
        config = deployment.monitoring.canary
    if deployment is None or config is None:
        if args.if_configured:
            print(f"ml-endpoints canary: {path} sets no kubernetes.monitoring.canary: skipped")
            return 0
        return refuse(f"{path}: set ml-endpoints:kubernetes.monitoring.canary to watch")
    url = args.prometheus or config.prometheus_url
    if url is None:
        return refuse(
            f"no Prometheus to ask: pass --prometheus URL or set "
            f"ml-endpoints:kubernetes.monitoring.canary.prometheus_url in {path}"
        )
    weights = {v.name: v.weight for v in deployment.variants}
    by_weight = sorted(weights, key=lambda name: -weights[name])
    champion = args.champion or by_weight[0]
    others = [name for name in by_weight if name != champion]
    challenger = args.challenger or (others[0] if others else None)
    for role, name in (("champion", champion), ("challenger", challenger)):
        if name not in weights:
            return refuse(f"{role} {name!r} is not a variant of {path} ({', '.join(weights)})")
    assert challenger is not None
    if challenger == champion:
        return refuse(f"champion and challenger are both {champion!r}")
    if weights[challenger] == 0:
        print(f"ml-endpoints canary: {challenger} gets no traffic (weight 0): nothing to watch")
        return 0
    print(
        f"watching {challenger} ({weights[challenger]}%) against {champion} "
        f"({weights[champion]}%) for {config.window} at {url}",
        file=sys.stderr,
    )
    try:
        verdict = watch(
            PrometheusClient(url),
            deployment_matchers(deployment),
            champion,
            challenger,
            config,
            wait=not args.no_wait,
            progress=lambda line: print(line, file=sys.stderr),
        )
    except (PrometheusError, ValueError) as exc:  # unreachable, refused query, bad URL
        return refuse(f"cannot query Prometheus at {url}: {exc}")
    print(verdict.report())
    return verdict.exit_code


# --------------------------------------------------------------------- promote / rollback


def _promotion(args: argparse.Namespace) -> int:
    from infra.stack.promotion import promote, rollback, write

    if args.command == "promote":
        change = promote(args.src, args.dst, args.stacks_dir, force=args.force)
    else:
        change = rollback(args.dst, args.stacks_dir)
    for line in change.summary:
        print(line)
    if args.dry_run:
        print(f"(dry run: {change.path} not written)")
        return 0
    write(change)
    print(f"wrote {change.path}; review with `ml-endpoints diff --stack {args.dst} --base HEAD`")
    return 0


# ----------------------------------------------------------------------- plan / diff / validate


def _plan(stack: str, stacks_dir: Path, *, as_json: bool) -> int:
    from infra.stack.files import stack_file
    from infra.stack.plan import plan_stack, render_tree, traffic

    plan = plan_stack(stack, stacks_dir)
    if as_json:
        sys.stdout.write(plan.to_json())
        return 0
    sys.stdout.write(render_tree(plan, str(stack_file(stack, stacks_dir))))
    for target, split in traffic(plan).items():
        shares = ", ".join(f"{variant} {share:g}%" for variant, share in split.items())
        print(f"traffic {stack}/{target}: {shares}")
    return 0


def _diff(stack: str, base: str, stacks_dir: Path, *, as_json: bool = False) -> int:
    from infra.stack.diff import diff_plans, plan_at_ref, render_diff, to_json
    from infra.stack.plan import plan_stack

    with ThreadPoolExecutor(max_workers=2) as pool:
        before = pool.submit(plan_at_ref, stack, base, stacks_dir)
        after = pool.submit(plan_stack, stack, stacks_dir)
        head = after.result()  # the working tree's errors first, as plan reports them
        diff = diff_plans(before.result(), head)
    sys.stdout.write(to_json(diff, base) if as_json else render_diff(diff, base))
    return 0


def validate_stacks(stacks: list[str], stacks_dir: Path) -> int:
    """Run every policy on each stack's offline plan; 0 if all pass, 1 on violations."""
    from infra.clusters.eks import EksClusterArgs
    from infra.policies import POLICIES, Resource, StackContext, run_checks
    from infra.stack.config import load_stack_file
    from infra.stack.plan import plan_stack

    if not stacks:
        raise ConfigError(
            str(stacks_dir / "Pulumi.*.yaml"),
            "no stack file (run from the repository's root, or pass --stacks-dir)",
        )
    contexts = {}
    warnings = {}
    for stack in stacks:
        config = load_stack_file(stack, stacks_dir)
        settings = config.policy
        contexts[stack] = StackContext(
            stack, settings.production, frozenset(settings.allow_public_exposure)
        )
        if isinstance(config.cluster, EksClusterArgs):
            warnings[stack] = config.cluster.runner_warning()
    with ThreadPoolExecutor(max_workers=len(stacks)) as pool:
        plans = dict(
            zip(stacks, pool.map(lambda s: plan_stack(s, stacks_dir), stacks), strict=True)
        )
    failed = 0
    for stack, plan in plans.items():
        resources = [Resource(r.type, r.name, r.urn, r.inputs) for r in plan.resources]
        violations = run_checks(resources, contexts[stack])
        failed += len(violations)
        for violation in violations:
            print(f"FAIL {stack} {violation.policy}: {violation.urn}: {violation.message}")
        if warnings.get(stack):
            print(f"warn {stack} eks-api-reachability: ml-endpoints:cluster: {warnings[stack]}")
        if not violations:
            kind = "production" if contexts[stack].production else "non-production"
            print(
                f"ok   {stack} ({kind}): {len(POLICIES)} policies, {len(plan.resources)} resources"
            )
    if failed:
        print(f"ml-endpoints validate: {failed} violations", file=sys.stderr)
        return 1
    return 0
