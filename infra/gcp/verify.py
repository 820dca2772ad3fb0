"""``ml-endpoints verify`` for Vertex AI: does the live endpoint match the stack config?

- every variant is deployed (display name = variant name) with the configured image, and
  nothing else is;
- the live traffic split, by variant name, equals ``vertex.traffic``;
- a prediction of the configured sample succeeds on every variant that receives traffic.
  Vertex AI routes predictions by the split (there is no per-deployed-model predict call), so
  requests are sent, at most ``max_requests``, until each such variant has answered; a variant
  at 0% cannot be reached and is checked for presence and image only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.gcp.config import VertexEndpointArgs
from infra.validation import ConfigError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from infra.stack.components import Components

#: Stack configuration key of the endpoint this module verifies.
STACK_KEY = "ml-endpoints:vertex"
CALL_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Finding:
    """One check: ``subject`` (endpoint or endpoint/variant), passed or not, and what was found."""

    subject: str
    ok: bool
    detail: str


def verify_stack(
    components: Components,
    settings: Mapping[str, Any],
    base_dir: Path,
    credentials: Credentials | None = None,
) -> list[Finding] | None:
    """The CLI's entry point: verify the stack's Vertex AI endpoint; None if the stack deploys
    none. Raises :class:`ConfigError` when the sample is missing or unreadable."""
    args = components.vertex
    if args is None:
        return None
    return check_endpoint(args, sample_instances(args, base_dir), credentials=credentials)


def verify_vertex(
    args: VertexEndpointArgs,
    *,
    instances: list[Any],
    credentials: Credentials | None = None,
    max_requests: int = 200,
) -> list[str]:
    """The failed checks as ``subject: detail`` lines (empty = the endpoint matches)."""
    findings = check_endpoint(args, instances, credentials=credentials, max_requests=max_requests)
    return [f"{f.subject}: {f.detail}" for f in findings if not f.ok]


def sample_instances(args: VertexEndpointArgs, base_dir: Path) -> list[Any]:
    """The configured sample instances (``file`` is relative to ``base_dir``)."""
    key = f"{STACK_KEY}.sample"
    if args.sample is None:
        raise ConfigError(key, "required by verify: instances or a file to predict on")
    if args.sample.instances is not None:
        return args.sample.instances
    path = (base_dir / str(args.sample.file)).resolve()
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{key}.file", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{key}.file", f"{path} is not JSON: {exc}") from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list) or not instances:
        raise ConfigError(f"{key}.file", f'{path} must hold {{"instances": [...]}}, not empty')
    return instances


def check_endpoint(
    args: VertexEndpointArgs,
    instances: list[Any],
    *,
    credentials: Credentials | None = None,
    max_requests: int = 200,
) -> list[Finding]:
    """Every check of the configured endpoint. ``credentials`` default to Application Default
    Credentials (anonymous for an ``http://`` ``api_endpoint``, i.e. a local emulator)."""
    from google.api_core import exceptions
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    api = args.endpoint_api
    if credentials is None and api.startswith("http://"):
        credentials = AnonymousCredentials()
    options: dict[str, Any] = {
        "credentials": credentials,
        "transport": "rest",
        "client_options": ClientOptions(api_endpoint=api),
    }
    endpoints = aiplatform_v1.EndpointServiceClient(**options)
    parent = f"projects/{args.project}/locations/{args.region}"
    try:
        endpoint = _find_endpoint(endpoints, args, parent)
    except exceptions.GoogleAPICallError as exc:
        return [Finding(parent, False, f"cannot read the endpoint: {exc.code} {exc.message}")]
    except LookupError as exc:
        return [Finding(parent, False, str(exc))]
    models = aiplatform_v1.ModelServiceClient(**options)
    prediction = aiplatform_v1.PredictionServiceClient(**options)
    return [
        *_deployments(args, endpoint, models),
        _traffic(args, endpoint),
        *_predictions(args, endpoint, prediction, instances, max_requests),
    ]


def _find_endpoint(endpoints: Any, args: VertexEndpointArgs, parent: str) -> Any:
    if args.endpoint_id:
        return endpoints.get_endpoint(
            name=f"{parent}/endpoints/{args.endpoint_id}", timeout=CALL_TIMEOUT_SECONDS
        )
    found = list(
        endpoints.list_endpoints(
            request={"parent": parent, "filter": f'display_name="{args.display_name}"'},
            timeout=CALL_TIMEOUT_SECONDS,
        )
    )
    if len(found) != 1:
        raise LookupError(
            f"{len(found)} endpoints named {args.display_name!r}, expected 1 "
            "(set vertex.endpoint_id to pick one)"
        )
    return found[0]


def _deployments(args: VertexEndpointArgs, endpoint: Any, models: Any) -> list[Finding]:
    """Each variant deployed with its image; nothing deployed that the config lacks."""
    from google.api_core import exceptions

    findings = []
    live = {d.display_name: d for d in endpoint.deployed_models}
    for variant in args.variants:
        subject = f"{endpoint.name}/{variant.name}"
        deployed = live.get(variant.name)
        if deployed is None:
            findings.append(Finding(subject, False, "not deployed"))
            continue
        try:
            model = models.get_model(name=deployed.model, timeout=CALL_TIMEOUT_SECONDS)
        except exceptions.GoogleAPICallError as exc:
            findings.append(Finding(subject, False, f"cannot read model {deployed.model}: {exc}"))
            continue
        image = model.container_spec.image_uri
        if image != variant.image:
            findings.append(Finding(subject, False, f"runs {image}, config says {variant.image}"))
        else:
            findings.append(Finding(subject, True, f"deployed as {deployed.id}, runs {image}"))
    configured = {v.name for v in args.variants}
    for name, deployed in sorted(live.items()):
        if name not in configured:
            findings.append(
                Finding(
                    f"{endpoint.name}/{name}", False, f"deployed ({deployed.id}), not in config"
                )
            )
    return findings


def _live_split(endpoint: Any) -> dict[str, int]:
    names = {d.id: d.display_name for d in endpoint.deployed_models}
    return {names.get(i, i): int(p) for i, p in endpoint.traffic_split.items() if p}


def _traffic(args: VertexEndpointArgs, endpoint: Any) -> Finding:
    live = _live_split(endpoint)
    wanted = {name: pct for name, pct in args.split.items() if pct}
    if live != wanted:
        return Finding(endpoint.name, False, f"traffic split is {live}, config says {wanted}")
    return Finding(endpoint.name, True, f"traffic split {live}")


def _predictions(
    args: VertexEndpointArgs,
    endpoint: Any,
    prediction: Any,
    instances: list[Any],
    max_requests: int,
) -> list[Finding]:
    """Predict until every variant with traffic has answered, at most ``max_requests`` times."""
    from google.api_core import exceptions
    from google.protobuf import json_format, struct_pb2

    names = {d.id: d.display_name for d in endpoint.deployed_models}
    configured = {v.name for v in args.variants}
    waiting = {name for name in _live_split(endpoint) if name in configured}
    payload = [json_format.ParseDict(row, struct_pb2.Value()) for row in instances]
    findings: list[Finding] = []
    for _ in range(max_requests if waiting else 0):
        try:
            answer = prediction.predict(
                endpoint=endpoint.name, instances=payload, timeout=CALL_TIMEOUT_SECONDS
            )
        except exceptions.GoogleAPICallError as exc:
            detail = f"prediction failed: {exc.code} {exc.message}"
            return [*findings, Finding(endpoint.name, False, detail)]
        served = names.get(answer.deployed_model_id, answer.deployed_model_id)
        if served in waiting:
            count = len(answer.predictions)
            ok = count == len(instances)
            detail = f"{count} predictions for {len(instances)} instances"
            findings.append(Finding(f"{endpoint.name}/{served}", ok, detail))
            waiting.discard(served)
        if not waiting:
            break
    for name in sorted(waiting):
        detail = f"no prediction reached it in {max_requests} requests"
        findings.append(Finding(f"{endpoint.name}/{name}", False, detail))
    idle = sorted(configured & set(names.values()) - set(_live_split(endpoint)))
    for name in idle:
        detail = "0% of the traffic: not invoked (Vertex AI routes predictions by the split)"
        findings.append(Finding(f"{endpoint.name}/{name}", True, detail))
    return findings
