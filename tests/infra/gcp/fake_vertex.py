"""A small, honest in-memory fake of the Vertex AI v1 REST API, for the real client.

Covers what the VertexEndpoint provider and ``verify`` call: endpoints (create, get, list by
display name, PATCH ``trafficSplit``, delete), ``:deployModel``, ``:undeployModel``,
``:mutateDeployedModel``, ``:predict``, ``models:upload``, models get/delete, and operations.
Long-running calls return operations that are already done, with the typed response the client
unpacks. It enforces the rules the real service enforces on these calls and that our code relies
on: traffic percentages sum to 100 and name deployed models; a model keeps its traffic until a
split takes it away; a deployed model cannot be deleted; unknown names are 404s; endpoint IDs
follow ``CreateEndpointRequest.endpoint_id``'s rules; a deployed-model ID is unique on its
endpoint; a private (``network``) endpoint takes one deployed model
(https://cloud.google.com/vertex-ai/docs/predictions/using-private-endpoints).

The real failure modes, as test controls (each keeps driving the real client):

- :meth:`FakeVertex.fail_next`: the next operation of a method ends in an error, nothing applied
  (a deploy that fails midway: Vertex removes the half-started deployment);
- :meth:`FakeVertex.hold_next`: the next operation stays running (``done: false``) until the test
  finishes or fails it; only then does its effect appear, as when a client gave up waiting but
  the service kept deploying (the SDK itself waits forever: ``aiplatform/models.py``
  ``operation_future.result(timeout=None)``);
- :meth:`FakeVertex.lose_next_response`: the service applies the call but the caller gets a 503,
  e.g. a model deployed but never recorded by the caller;
- ``console_*``: what a person does in the Cloud console (split, undeploy, scale, deploy by hand).

Not modelled: IAM, quotas, replica start-up time, real container health checks, endpoint
logging settings (stored, not acted on), pagination.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from tests.infra.gcp.fake_google_api import ApiError, FakeGoogleApi

_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
_LOCATION = r"projects/[^/]+/locations/[^/]+"
# CreateEndpointRequest.endpoint_id (python-aiplatform aiplatform_v1/types/endpoint_service.py):
# a letter then up to 62 of [a-z0-9-] ending in a letter or digit, or up to 9 digits, no
# leading zero.
_ENDPOINT_ID = re.compile(r"[1-9][0-9]{0,8}|[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass
class _Failure:
    method: str
    code: int
    message: str
    hold: HeldOperation | None = None
    lose_response: bool = False


class HeldOperation:
    """An operation the service keeps running until the test decides how it ends."""

    def __init__(self, fake: FakeVertex, method: str) -> None:
        self.fake = fake
        self.method = method
        self.name: str | None = None
        self.model: str | None = None
        self._reserved_id: str | None = None
        self._effect: Callable[[], tuple[str, dict[str, Any]]] | None = None

    @property
    def started(self) -> bool:
        """Whether the call arrived (the operation exists)."""
        return self.name is not None

    def finish(self) -> None:
        """The operation succeeds now: its effect appears and it reports its response."""
        with self.fake._lock:
            assert self.name is not None, "not started yet"
            assert self._effect is not None, "already ended"
            response_type, response = self._effect()
            self.fake.operations[self.name].update(
                done=True, response={"@type": response_type, **response}
            )
            self._effect = None

    def fail(self, message: str, code: int = 13) -> None:
        """The operation ends in an error; nothing is applied."""
        with self.fake._lock:
            assert self.name is not None, "not started yet"
            self.fake.operations[self.name].update(
                done=True, error={"code": code, "message": message}
            )
            self._effect = None

    @property
    def reserved_id(self) -> str | None:
        """The deployed-model ID a held deployModel will take (IDs are reserved while it runs)."""
        return self._reserved_id


class FakeVertex(FakeGoogleApi):
    """Start with :meth:`start`, point the client at :attr:`url`, stop with :meth:`stop`."""

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        # Image URI -> base URL of a running serving container to forward :predict to.
        self.backends: dict[str, str] = {}
        self._failures: list[_Failure] = []
        self._held: list[HeldOperation] = []
        self._ids = itertools.count(1001)
        self._round_robin: dict[str, dict[str, int]] = {}

    # -- test controls --------------------------------------------------------------------------
    def add_endpoint(
        self,
        project: str,
        region: str,
        display_name: str,
        endpoint_id: str,
        network: str | None = None,
    ) -> str:
        """Create an endpoint directly (as pulumi-gcp's AiEndpoint would); returns its name.
        With ``network`` it is a private (VPC-peered) endpoint."""
        name = f"projects/{project}/locations/{region}/endpoints/{endpoint_id}"
        self.endpoints[name] = {
            "name": name,
            "displayName": display_name,
            "deployedModels": [],
            "trafficSplit": {},
        }
        if network is not None:
            self.endpoints[name]["network"] = network
        return name

    def fail_next(self, method: str, message: str, code: int = 9) -> None:
        """Make the next ``method`` operation (e.g. ``deployModel``) finish with this error
        (``code`` is a google.rpc.Code; 9 = FAILED_PRECONDITION)."""
        self._failures.append(_Failure(method, code, message))

    def stall_next(self, method: str) -> None:
        """Make the next ``method`` operation never finish (to test timeouts)."""
        self.hold_next(method)

    def hold_next(self, method: str) -> HeldOperation:
        """Keep the next ``method`` operation running until ``finish()`` or ``fail()``."""
        held = HeldOperation(self, method)
        self._failures.append(_Failure(method, 0, "", hold=held))
        return held

    def lose_next_response(self, method: str) -> None:
        """Apply the next ``method`` call, then answer it with HTTP 503 (response lost)."""
        self._failures.append(_Failure(method, 14, "", lose_response=True))

    # -- what a person does in the console ------------------------------------------------------
    def console_split(self, endpoint: str, split_by_name: dict[str, int]) -> None:
        """Set the traffic split by deployed-model display name."""
        state = self.endpoints[endpoint]
        ids = {d["displayName"]: d["id"] for d in state["deployedModels"]}
        state["trafficSplit"] = {ids[n]: pct for n, pct in split_by_name.items() if pct}

    def console_undeploy(self, endpoint: str, display_name: str) -> None:
        """Undeploy a deployed model (its traffic is dropped, as the console requires)."""
        state = self.endpoints[endpoint]
        gone = next(d["id"] for d in state["deployedModels"] if d["displayName"] == display_name)
        state["deployedModels"] = [d for d in state["deployedModels"] if d["id"] != gone]
        state["trafficSplit"] = {k: v for k, v in state["trafficSplit"].items() if k != gone}

    def console_scale(self, endpoint: str, display_name: str, low: int, high: int) -> None:
        """Change a deployed model's replica bounds."""
        deployed = self.deployed_by_name(endpoint)[display_name]
        deployed["dedicatedResources"].update(minReplicaCount=low, maxReplicaCount=high)

    def console_deploy(self, endpoint: str, model: str, display_name: str) -> str:
        """Deploy ``model`` by hand with no traffic; returns the deployed-model ID."""
        new_id = str(next(self._ids))
        self.endpoints[endpoint]["deployedModels"].append(
            {
                "id": new_id,
                "model": model,
                "displayName": display_name,
                "dedicatedResources": {
                    "machineSpec": {"machineType": "n1-standard-2"},
                    "minReplicaCount": 1,
                    "maxReplicaCount": 1,
                },
            }
        )
        return new_id

    def console_upload(self, parent: str, display_name: str, labels: dict[str, str]) -> str:
        """Upload a model by hand; returns its name."""
        name = f"{parent}/models/{next(self._ids)}"
        self.models[name] = {
            "name": name,
            "versionId": "1",
            "displayName": display_name,
            "labels": dict(labels),
            "containerSpec": {"imageUri": "r/i:1"},
        }
        return name

    def restore(self, endpoints: dict[str, Any], models: dict[str, Any]) -> None:
        """Put back a recorded cloud (``endpoints`` and ``models`` as this fake keeps them)."""
        self.endpoints = copy.deepcopy(endpoints)
        self.models = copy.deepcopy(models)
        numbers = [int(n.rsplit("/", 1)[1]) for n in [*endpoints, *models] if n[-1].isdigit()]
        numbers += [int(d["id"]) for e in endpoints.values() for d in e["deployedModels"]]
        self._ids = itertools.count(max(numbers, default=1000) + 1)

    def deployed_by_name(self, endpoint: str) -> dict[str, dict[str, Any]]:
        """The live deployed models of ``endpoint`` keyed by display name."""
        return {d["displayName"]: d for d in self.endpoints[endpoint]["deployedModels"]}

    def split_by_name(self, endpoint: str) -> dict[str, int]:
        """The live traffic split of ``endpoint`` keyed by deployed model display name."""
        state = self.endpoints[endpoint]
        names = {d["id"]: d["displayName"] for d in state["deployedModels"]}
        return {names[i]: pct for i, pct in state["trafficSplit"].items()}

    # -- HTTP -----------------------------------------------------------------------------------
    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("POST", rf"^/v1/({_LOCATION})/endpoints$", "createEndpoint"),
        ("GET", rf"^/v1/({_LOCATION})/endpoints$", "listEndpoints"),
        ("GET", rf"^/v1/({_LOCATION}/endpoints/[^/:]+)$", "getEndpoint"),
        ("PATCH", rf"^/v1/({_LOCATION}/endpoints/[^/:]+)$", "updateEndpoint"),
        ("DELETE", rf"^/v1/({_LOCATION}/endpoints/[^/:]+)$", "deleteEndpoint"),
        ("POST", rf"^/v1/({_LOCATION}/endpoints/[^/:]+):deployModel$", "deployModel"),
        ("POST", rf"^/v1/({_LOCATION}/endpoints/[^/:]+):undeployModel$", "undeployModel"),
        (
            "POST",
            rf"^/v1/({_LOCATION}/endpoints/[^/:]+):mutateDeployedModel$",
            "mutateDeployedModel",
        ),
        ("POST", rf"^/v1/({_LOCATION}/endpoints/[^/:]+):predict$", "predict"),
        ("POST", rf"^/v1/({_LOCATION})/models:upload$", "uploadModel"),
        ("GET", rf"^/v1/({_LOCATION})/models$", "listModels"),
        ("GET", rf"^/v1/({_LOCATION}/models/[^/:]+)$", "getModel"),
        ("PATCH", rf"^/v1/({_LOCATION}/models/[^/:]+)$", "updateModel"),
        ("DELETE", rf"^/v1/({_LOCATION}/models/[^/:]+)$", "deleteModel"),
        # The client polls operations at /ui/{name} first (the service's primary HTTP binding).
        ("GET", rf"^/(?:v1|ui)/({_LOCATION}/(?:[^/]+/[^/]+/)?operations/[^/:]+)$", "getOperation"),
        ("GET", rf"^/(?:v1|ui)/({_LOCATION}/endpoints/[^/:]+)/operations$", "listOperations"),
    )

    # -- helpers --------------------------------------------------------------------------------
    def _endpoint(self, name: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ApiError(404, f'Endpoint "{name}" not found.')
        return endpoint

    def _model(self, name: str) -> dict[str, Any]:
        model = self.models.get(name.split("@")[0])
        if model is None:
            raise ApiError(404, f'Model "{name}" not found.')
        return model

    def _operation(
        self,
        method: str,
        target: str,
        effect: Callable[[], tuple[str, dict[str, Any]]],
        reserve: str | None = None,
    ) -> dict[str, Any]:
        """Run ``effect`` (which applies the change and returns the typed response) as a
        long-running operation named under ``target``, unless a test control says otherwise."""
        parts = target.split("/")
        owner = "/".join(parts[:6]) if len(parts) >= 6 else "/".join(parts[:4])
        name = f"{owner}/operations/{next(self._ids)}"
        operation: dict[str, Any] = {
            "name": name,
            "done": True,
            "metadata": {"@type": _TYPE + "GenericOperationMetadata"},
        }
        self.operations[name] = operation
        failure = next((f for f in self._failures if f.method == method), None)
        if failure is None:
            response_type, response = effect()
            operation["response"] = {"@type": response_type, **response}
            return operation
        self._failures.remove(failure)
        if failure.hold is not None:
            operation["done"] = False
            failure.hold.name = name
            failure.hold._effect = effect
            failure.hold._reserved_id = reserve
            self._held.append(failure.hold)
            return operation
        if failure.lose_response:
            response_type, response = effect()
            operation["response"] = {"@type": response_type, **response}
            raise ApiError(503, "The service is currently unavailable.", "UNAVAILABLE")
        operation["error"] = {"code": failure.code, "message": failure.message}
        return operation

    def _lost(self, method: str) -> bool:
        """Consume a lose-response control for a synchronous call."""
        failure = next((f for f in self._failures if f.method == method and f.lose_response), None)
        if failure is not None:
            self._failures.remove(failure)
        return failure is not None

    def _running(self, endpoint: str) -> list[HeldOperation]:
        return [
            h
            for h in self._held
            if h.name is not None
            and h.name.startswith(endpoint + "/")
            and not self.operations[h.name]["done"]
        ]

    @staticmethod
    def _only_mask(query: dict[str, str], field: str) -> None:
        mask = query.get("updateMask", "")
        if mask != field:
            raise ApiError(400, f"the fake only updates {field}, updateMask={mask!r}")

    @staticmethod
    def _check_split(split: dict[str, Any], ids: set[str], where: str) -> dict[str, int]:
        unknown = sorted(set(split) - ids)
        if unknown:
            raise ApiError(400, f"{where} names unknown DeployedModel ids {unknown}")
        values = {k: int(v) for k, v in split.items()}
        if any(v < 0 or v > 100 for v in values.values()):
            raise ApiError(400, f"{where}: percentages must be within 0-100")
        if values and sum(values.values()) != 100:
            raise ApiError(400, f"{where}: percentages must add up to 100, got {values}")
        return values

    # -- endpoints ------------------------------------------------------------------------------
    def _createEndpoint(
        self, parent: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint_id = query.get("endpointId") or str(next(self._ids))
        if not _ENDPOINT_ID.fullmatch(endpoint_id):
            raise ApiError(
                400,
                f"endpoint_id {endpoint_id!r}: up to 9 digits without a leading zero, or up to "
                "63 characters [a-z0-9-] starting with a letter and ending with a letter or digit",
            )
        name = f"{parent}/endpoints/{endpoint_id}"
        if name in self.endpoints:
            raise ApiError(409, f'Endpoint "{name}" already exists.')
        parts = parent.split("/")

        def effect() -> tuple[str, dict[str, Any]]:
            self.add_endpoint(
                parts[1], parts[3], body.get("displayName", ""), endpoint_id, body.get("network")
            )
            return _TYPE + "Endpoint", self.endpoints[name]

        return self._operation("createEndpoint", name, effect)

    def _listEndpoints(
        self, parent: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        wanted = re.fullmatch(r'\s*display_name\s*=\s*"([^"]*)"\s*', query.get("filter", ""))
        if query.get("filter") and wanted is None:
            raise ApiError(400, f"filter not supported by the fake: {query['filter']!r}")
        found = [
            e
            for n, e in self.endpoints.items()
            if n.startswith(parent + "/") and (wanted is None or e["displayName"] == wanted[1])
        ]
        return {"endpoints": found}

    def _getEndpoint(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        return self._endpoint(name)

    def _updateEndpoint(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        self._only_mask(query, "trafficSplit")
        ids = {d["id"] for d in endpoint["deployedModels"]}
        split = self._check_split(body.get("trafficSplit", {}), ids, "Endpoint.traffic_split")
        endpoint["trafficSplit"] = split
        if self._lost("updateEndpoint"):
            raise ApiError(503, "The service is currently unavailable.", "UNAVAILABLE")
        return endpoint

    def _deleteEndpoint(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        if endpoint["deployedModels"]:
            raise ApiError(400, "Endpoint still has deployed models.", "FAILED_PRECONDITION")

        def effect() -> tuple[str, dict[str, Any]]:
            del self.endpoints[name]
            return "type.googleapis.com/google.protobuf.Empty", {}

        return self._operation("deleteEndpoint", name, effect)

    def _deployModel(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        deployed = dict(body.get("deployedModel") or {})
        model = self._model(deployed.get("model", ""))
        resources = deployed.get("dedicatedResources") or {}
        if not (resources.get("machineSpec") or {}).get("machineType"):
            raise ApiError(400, "dedicatedResources.machineSpec.machineType is required")
        if int(resources.get("minReplicaCount", 0)) < 1:
            raise ApiError(400, "dedicatedResources.minReplicaCount must be >= 1")
        taken = {d["id"] for d in endpoint["deployedModels"]}
        taken |= {str(h.reserved_id) for h in self._running(name) if h.reserved_id}
        new_id = str(deployed.get("id") or next(self._ids))
        if not re.fullmatch(r"[0-9]{1,10}", new_id):
            raise ApiError(400, f"DeployedModel.id {new_id!r} must be 1-10 digits")
        if new_id in taken:
            raise ApiError(409, f'DeployedModel "{new_id}" already exists in "{name}".')
        if "network" in endpoint and (endpoint["deployedModels"] or self._running(name)):
            raise ApiError(
                400,
                f"Endpoint {name} is a private endpoint: it serves only one model.",
                "FAILED_PRECONDITION",
            )
        ids = {d["id"] for d in endpoint["deployedModels"]} | {"0"}
        split = self._check_split(body.get("trafficSplit", {}), ids, "traffic_split")

        def effect() -> tuple[str, dict[str, Any]]:
            deployed.update(id=new_id, modelVersionId=model["versionId"])
            deployed.setdefault("displayName", model["displayName"])
            endpoint["deployedModels"].append(deployed)
            if split:
                live = {d["id"] for d in endpoint["deployedModels"]}
                endpoint["trafficSplit"] = {
                    (new_id if k == "0" else k): v
                    for k, v in split.items()
                    if k == "0" or k in live
                }
            return _TYPE + "DeployModelResponse", {"deployedModel": deployed}

        operation = self._operation("deployModel", name, effect, reserve=new_id)
        for held in self._held:
            if held.name == operation["name"]:
                held.model = model["name"]
        return operation

    def _undeployModel(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        target = body.get("deployedModelId", "")
        remaining = [d for d in endpoint["deployedModels"] if d["id"] != target]
        if len(remaining) == len(endpoint["deployedModels"]):
            raise ApiError(404, f'DeployedModel "{target}" not found in Endpoint "{name}".')
        ids = {d["id"] for d in remaining}
        if "trafficSplit" in body:
            split = self._check_split(body["trafficSplit"], ids, "traffic_split")
        else:
            split = endpoint["trafficSplit"]
            if remaining and split.get(target, 0) > 0:
                raise ApiError(
                    400,
                    f"DeployedModel {target} has {split[target]}% of the traffic; "
                    "move it first or pass traffic_split.",
                    "FAILED_PRECONDITION",
                )

        def effect() -> tuple[str, dict[str, Any]]:
            endpoint["deployedModels"] = [
                d for d in endpoint["deployedModels"] if d["id"] != target
            ]
            endpoint["trafficSplit"] = (
                {k: v for k, v in split.items() if k != target}
                if endpoint["deployedModels"]
                else {}
            )
            return _TYPE + "UndeployModelResponse", {}

        return self._operation("undeployModel", name, effect)

    def _mutateDeployedModel(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        change = body.get("deployedModel") or {}
        target = next((d for d in endpoint["deployedModels"] if d["id"] == change.get("id")), None)
        if target is None:
            raise ApiError(404, f'DeployedModel "{change.get("id")}" not found in "{name}".')
        allowed = {
            "dedicatedResources.minReplicaCount": "minReplicaCount",
            "dedicatedResources.maxReplicaCount": "maxReplicaCount",
            "dedicatedResources.autoscalingMetricSpecs": "autoscalingMetricSpecs",
        }
        paths = [p for p in body.get("updateMask", "").split(",") if p]
        bad = [p for p in paths if p not in allowed]
        if bad or not paths:
            raise ApiError(400, f"updateMask may only name {sorted(allowed)}, got {paths}")
        source = change.get("dedicatedResources") or {}

        def effect() -> tuple[str, dict[str, Any]]:
            for path in paths:
                key = allowed[path]
                if key in source:
                    target["dedicatedResources"][key] = source[key]
                else:
                    target["dedicatedResources"].pop(key, None)
            return _TYPE + "MutateDeployedModelResponse", {"deployedModel": target}

        return self._operation("mutateDeployedModel", name, effect)

    def _predict(self, name: str, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        split = {k: v for k, v in endpoint["trafficSplit"].items() if v > 0}
        if not split:
            raise ApiError(400, f'Endpoint "{name}" has no traffic split.', "FAILED_PRECONDITION")
        chosen = self._next_model(name, split)
        deployed = next(d for d in endpoint["deployedModels"] if d["id"] == chosen)
        model = self._model(deployed["model"])
        instances = body.get("instances", [])
        backend = self.backends.get(model["containerSpec"]["imageUri"])
        if backend is None:
            predictions: list[Any] = [0 for _ in instances]
        else:
            predictions = self._forward(backend, model, body)
        return {
            "predictions": predictions,
            "deployedModelId": chosen,
            "model": model["name"],
            "modelVersionId": model["versionId"],
            "modelDisplayName": model["displayName"],
        }

    def _next_model(self, endpoint: str, split: dict[str, int]) -> str:
        """Smooth weighted round robin: deterministic, and true to the percentages."""
        current = self._round_robin.setdefault(endpoint, {})
        for key in list(current):
            if key not in split:
                del current[key]
        for key, weight in split.items():
            current[key] = current.get(key, 0) + weight
        chosen = max(current, key=lambda k: current[k])
        current[chosen] -= sum(split.values())
        return chosen

    @staticmethod
    def _forward(backend: str, model: dict[str, Any], body: dict[str, Any]) -> list[Any]:
        route = model["containerSpec"].get("predictRoute", "/predict")
        try:
            answer = httpx.post(backend + route, json=body, timeout=10)
        except httpx.HTTPError as exc:
            raise ApiError(503, f"model server unreachable: {exc}", "UNAVAILABLE") from None
        if answer.status_code != 200:
            raise ApiError(
                answer.status_code, f"model server answered {answer.status_code}: {answer.text}"
            )
        predictions: list[Any] = answer.json()["predictions"]
        return predictions

    # -- models ---------------------------------------------------------------------------------
    def _uploadModel(
        self, parent: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        model = dict(body.get("model") or {})
        if not (model.get("containerSpec") or {}).get("imageUri"):
            raise ApiError(400, "model.containerSpec.imageUri is required")
        if not model.get("displayName"):
            raise ApiError(400, "model.displayName is required")
        name = f"{parent}/models/{next(self._ids)}"

        def effect() -> tuple[str, dict[str, Any]]:
            model.update(name=name, versionId="1")
            self.models[name] = model
            return _TYPE + "UploadModelResponse", {"model": name, "modelVersionId": "1"}

        return self._operation("uploadModel", name, effect)

    def _listModels(
        self, parent: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        text = query.get("filter", "")
        wanted = re.fullmatch(r'\s*labels\.([a-z0-9_-]+)\s*=\s*"?([a-z0-9_-]*)"?\s*', text)
        if text and wanted is None:
            raise ApiError(400, f"filter not supported by the fake: {text!r}")
        found = [
            m
            for n, m in self.models.items()
            if n.startswith(parent + "/")
            and (wanted is None or (m.get("labels") or {}).get(wanted[1]) == wanted[2])
        ]
        return {"models": found}

    def _getModel(self, name: str, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        return self._model(name)

    def _updateModel(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        model = self._model(name)
        self._only_mask(query, "labels")
        model["labels"] = dict(body.get("labels") or {})
        return model

    def _deleteModel(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        model = self._model(name)
        users = [
            e["name"]
            for e in self.endpoints.values()
            if any(d["model"].split("@")[0] == model["name"] for d in e["deployedModels"])
        ]
        deploying = [
            h.name
            for h in self._held
            if h.model == model["name"] and h.name and not self.operations[h.name]["done"]
        ]
        if users or deploying:
            raise ApiError(
                400,
                f"Model {model['name']} is deployed to {users or deploying}.",
                "FAILED_PRECONDITION",
            )

        def effect() -> tuple[str, dict[str, Any]]:
            del self.models[model["name"]]
            return "type.googleapis.com/google.protobuf.Empty", {}

        return self._operation("deleteModel", model["name"], effect)

    def _getOperation(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        operation = self.operations.get(name)
        if operation is None:
            raise ApiError(404, f'Operation "{name}" not found.')
        return operation

    def _listOperations(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        self._endpoint(name)
        return {"operations": [o for n, o in self.operations.items() if n.startswith(name + "/")]}
