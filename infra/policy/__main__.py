"""CrossGuard entry point: ``pulumi preview --policy-pack infra/policy``.

Constructing :class:`PolicyPack` starts the analyzer's gRPC server and blocks, so nothing else
imports this module; the checks themselves are plain functions in :mod:`infra.policies`.
The stack's ``ml-endpoints:policy`` settings (production, allow_public_exposure) are read from
the stack configuration Pulumi hands to policy packs.

Pulumi runs the pack as ``python -m pulumi.policy ENGINE infra/policy``, which executes this
directory with ``runpy.run_path`` (the directory first on ``sys.path``); the directory holds
only this file and the pack's manifests, so nothing in it can shadow an importable module.
"""

import os

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policies import POLICIES, Policy, Resource, StackContext


def _context() -> StackContext:
    settings = pulumi.Config("ml-endpoints").get_object("policy") or {}
    return StackContext(
        stack=os.environ.get("PULUMI_STACK", ""),
        production=bool(settings.get("production", False)),
        allow_public_exposure=frozenset(settings.get("allow_public_exposure", [])),
    )


def _stack_policy(policy: Policy) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(type=r.resource_type, name=r.name, urn=r.urn, props=r.props)
            for r in args.resources
        ]
        for violation in policy.check(resources, _context()):
            report_violation(violation.message, violation.urn)

    return StackValidationPolicy(
        name=policy.name,
        description=policy.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


PolicyPack(
    name="ml-endpoints",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_stack_policy(p) for p in POLICIES],
)
