"""``ml-endpoints verify`` for Vertex AI: does the live endpoint match the stack config?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.gcp.config import VertexEndpointArgs

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

CALL_TIMEOUT_SECONDS = 30.0


def verify_vertex(
    args: VertexEndpointArgs,
    *,
    instances: list[Any],
    credentials: Credentials | None = None,
    max_requests: int = 200,
) -> list[str]:
    """Check the live endpoint against ``args``; return the failures (empty = all good).

    - every variant is deployed (by display name = variant name) with the configured image,
      and nothing else is;
    - the live traffic split, by variant name, equals ``args.traffic``;
    - a prediction of ``instances`` succeeds on every variant that receives traffic. Vertex AI
      routes predictions by the split (there is no per-deployed-model predict call), so
      requests are sent, at most ``max_requests``, until each such variant has answered;
      variants at 0% cannot be reached and are checked for presence only.

    ``credentials`` default to Application Default Credentials (anonymous for an ``http://``
    ``api_endpoint``, i.e. a local emulator).
    """
    from google.api_core import exceptions
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format, struct_pb2

    api = args.endpoint_api
    if credentials is None and api.startswith("http://"):
        credentials = AnonymousCredentials()
    options = ClientOptions(api_endpoint=api)
    clients: dict[str, Any] = {
        "credentials": credentials,
        "transport": "rest",
        "client_options": options,
    }
    endpoints = aiplatform_v1.EndpointServiceClient(**clients)
    models = aiplatform_v1.ModelServiceClient(**clients)
    prediction = aiplatform_v1.PredictionServiceClient(**clients)
    parent = f"projects/{args.project}/locations/{args.region}"

    try:
        if args.endpoint_id:
            endpoint = endpoints.get_endpoint(
                name=f"{parent}/endpoints/{args.endpoint_id}", timeout=CALL_TIMEOUT_SECONDS
            )
        else:
            found = list(
                endpoints.list_endpoints(
                    request={"parent": parent, "filter": f'display_name="{args.display_name}"'},
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            )
            if len(found) != 1:
                return [
                    f"vertex: {len(found)} endpoints named {args.display_name!r} in {parent}, "
                    "expected 1 (set vertex.endpoint_id to pick one)"
                ]
            endpoint = found[0]
    except exceptions.GoogleAPICallError as exc:
        return [f"vertex: cannot read the endpoint in {parent}: {exc.code} {exc.message}"]

    where = f"vertex endpoint {endpoint.name}"
    failures: list[str] = []
    live = {d.display_name: d for d in endpoint.deployed_models}
    for variant in args.variants:
        deployed = live.get(variant.name)
        if deployed is None:
            failures.append(f"{where}: variant {variant.name!r} is not deployed")
            continue
        try:
            model = models.get_model(name=deployed.model, timeout=CALL_TIMEOUT_SECONDS)
        except exceptions.GoogleAPICallError as exc:
            failures.append(f"{where}: variant {variant.name!r}: model {deployed.model}: {exc}")
            continue
        if model.container_spec.image_uri != variant.image:
            failures.append(
                f"{where}: variant {variant.name!r} runs {model.container_spec.image_uri}, "
                f"config says {variant.image}"
            )
    configured = {v.name for v in args.variants}
    for name, deployed in sorted(live.items()):
        if name not in configured:
            failures.append(f"{where}: deployed model {name!r} ({deployed.id}) is not in config")

    names = {d.id: d.display_name for d in endpoint.deployed_models}
    live_split = {names.get(i, i): int(p) for i, p in endpoint.traffic_split.items() if p}
    wanted = {name: pct for name, pct in args.split.items() if pct}
    if live_split != wanted:
        failures.append(f"{where}: traffic split is {live_split}, config says {wanted}")

    # Predictions reach the variants that receive traffic.
    payload = [json_format.ParseDict(row, struct_pb2.Value()) for row in instances]
    waiting = {n for n in live_split if n in configured}
    for _ in range(max_requests if waiting else 0):
        try:
            answer = prediction.predict(
                endpoint=endpoint.name, instances=payload, timeout=CALL_TIMEOUT_SECONDS
            )
        except exceptions.GoogleAPICallError as exc:
            failures.append(f"{where}: prediction failed: {exc.code} {exc.message}")
            break
        served = names.get(answer.deployed_model_id, answer.deployed_model_id)
        if len(answer.predictions) != len(instances):
            failures.append(
                f"{where}: variant {served!r} returned {len(answer.predictions)} predictions "
                f"for {len(instances)} instances"
            )
        waiting.discard(served)
        if not waiting:
            break
    else:
        for name in sorted(waiting):
            failures.append(f"{where}: no prediction reached variant {name!r} in {max_requests}")
    return failures
