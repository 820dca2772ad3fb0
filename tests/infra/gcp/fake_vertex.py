"""A small, honest in-memory fake of the Vertex AI v1 REST API, for the real client.

Covers what the VertexEndpoint provider and ``verify`` call: endpoints (create, get, list by
display name, PATCH ``trafficSplit``, delete), ``:deployModel``, ``:undeployModel``,
``:mutateDeployedModel``, ``:predict``, ``models:upload``, models get/delete, and operations.
Long-running calls return operations that are already done, with the typed response the client
unpacks. It enforces the rules the real service enforces on these calls and that our code relies
on: traffic percentages sum to 100 and name deployed models; a model keeps its traffic until a
split takes it away; a deployed model cannot be deleted; unknown names are 404s.

Not modelled: IAM, quotas, replica start-up time, real container health checks, endpoint
network/logging settings (stored, not acted on), pagination.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
_LOCATION = r"projects/[^/]+/locations/[^/]+"
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 500: "INTERNAL"}


class ApiError(Exception):
    """An error answer: HTTP status, canonical status name and message."""

    def __init__(self, http: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.http = http
        self.status = status or _STATUS.get(http, "UNKNOWN")


@dataclass
class Call:
    """One API method the fake served, in order (``method`` as in the REST reference)."""

    method: str
    target: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str
    code: int
    message: str
    stall: bool = False


class FakeVertex:
    """Start with :meth:`start`, point the client at :attr:`url`, stop with :meth:`stop`."""

    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        # Image URI -> base URL of a running serving container to forward :predict to.
        self.backends: dict[str, str] = {}
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._round_robin: dict[str, dict[str, int]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> FakeVertex:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test controls --------------------------------------------------------------------------
    def add_endpoint(self, project: str, region: str, display_name: str, endpoint_id: str) -> str:
        """Create an endpoint directly (as pulumi-gcp's AiEndpoint would); returns its name."""
        name = f"projects/{project}/locations/{region}/endpoints/{endpoint_id}"
        self.endpoints[name] = {
            "name": name,
            "displayName": display_name,
            "deployedModels": [],
            "trafficSplit": {},
        }
        return name

    def fail_next(self, method: str, message: str, code: int = 9) -> None:
        """Make the next ``method`` operation (e.g. ``deployModel``) finish with this error
        (``code`` is a google.rpc.Code; 9 = FAILED_PRECONDITION)."""
        self._failures.append(_Failure(method, code, message))

    def stall_next(self, method: str) -> None:
        """Make the next ``method`` operation never finish (to test timeouts)."""
        self._failures.append(_Failure(method, 0, "", stall=True))

    def methods(self, *names: str) -> list[str]:
        """The API methods called so far, in order, optionally only those in ``names``."""
        return [c.method for c in self.calls if not names or c.method in names]

    def split_by_name(self, endpoint: str) -> dict[str, int]:
        """The live traffic split of ``endpoint`` keyed by deployed model display name."""
        state = self.endpoints[endpoint]
        names = {d["id"]: d["displayName"] for d in state["deployedModels"]}
        return {names[i]: pct for i, pct in state["trafficSplit"].items()}

    # -- HTTP -----------------------------------------------------------------------------------
    _ROUTES: tuple[tuple[str, str, str], ...] = (
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
        ("GET", rf"^/v1/({_LOCATION}/models/[^/:]+)$", "getModel"),
        ("DELETE", rf"^/v1/({_LOCATION}/models/[^/:]+)$", "deleteModel"),
        # The client polls operations at /ui/{name} first (the service's primary HTTP binding).
        ("GET", rf"^/(?:v1|ui)/({_LOCATION}/(?:[^/]+/[^/]+/)?operations/[^/:]+)$", "getOperation"),
    )

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("content-length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            for method, pattern, name in self._ROUTES:
                found = re.match(pattern, url.path)
                if found and request.command == method:
                    handler: Callable[[str, dict[str, Any], dict[str, str]], dict[str, Any]]
                    handler = getattr(self, "_" + name)
                    with self._lock:
                        self.calls.append(Call(name, found.group(1), copy.deepcopy(body)))
                        answer = handler(found.group(1), body, query)
                    self._send(request, 200, answer)
                    return
            raise ApiError(404, f"no such method: {request.command} {url.path}")
        except ApiError as exc:
            self._send(
                request,
                exc.http,
                {"error": {"code": exc.http, "message": str(exc), "status": exc.status}},
            )
        except json.JSONDecodeError as exc:
            self._send(request, 400, {"error": {"code": 400, "message": f"bad JSON: {exc}"}})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("content-type", "application/json; charset=UTF-8")
        request.send_header("content-length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

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
        self, method: str, parent: str, response_type: str, response: dict[str, Any]
    ) -> dict[str, Any]:
        """A finished operation: the typed response, or an injected failure."""
        location = "/".join(parent.split("/")[:4])
        name = f"{location}/operations/{next(self._ids)}"
        operation: dict[str, Any] = {
            "name": name,
            "done": True,
            "metadata": {"@type": _TYPE + "GenericOperationMetadata"},
        }
        failure = next((f for f in self._failures if f.method == method), None)
        if failure is not None:
            self._failures.remove(failure)
            if failure.stall:
                operation["done"] = False
            else:
                operation["error"] = {"code": failure.code, "message": failure.message}
        else:
            operation["response"] = {"@type": response_type, **response}
        self.operations[name] = operation
        return operation

    def _failing(self, method: str) -> bool:
        return any(f.method == method for f in self._failures)

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
        name = f"{parent}/endpoints/{endpoint_id}"
        if name in self.endpoints:
            raise ApiError(409, f'Endpoint "{name}" already exists.')
        parts = parent.split("/")
        self.add_endpoint(parts[1], parts[3], body.get("displayName", ""), endpoint_id)
        return self._operation("createEndpoint", parent, _TYPE + "Endpoint", self.endpoints[name])

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
        mask = query.get("updateMask", "")
        if mask != "trafficSplit":
            raise ApiError(400, f"the fake only updates trafficSplit, updateMask={mask!r}")
        ids = {d["id"] for d in endpoint["deployedModels"]}
        split = self._check_split(body.get("trafficSplit", {}), ids, "Endpoint.traffic_split")
        endpoint["trafficSplit"] = split
        return endpoint

    def _deleteEndpoint(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        if endpoint["deployedModels"]:
            raise ApiError(400, "Endpoint still has deployed models.", "FAILED_PRECONDITION")
        del self.endpoints[name]
        return self._operation(
            "deleteEndpoint", name, "type.googleapis.com/google.protobuf.Empty", {}
        )

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
        new_id = str(next(self._ids))
        ids = {d["id"] for d in endpoint["deployedModels"]} | {"0"}
        split = self._check_split(body.get("trafficSplit", {}), ids, "traffic_split")
        if self._failing("deployModel"):  # the operation fails: nothing changes
            return self._operation("deployModel", name, "", {})
        deployed.update(id=new_id, modelVersionId=model["versionId"])
        deployed.setdefault("displayName", model["displayName"])
        endpoint["deployedModels"].append(deployed)
        if split:
            endpoint["trafficSplit"] = {(new_id if k == "0" else k): v for k, v in split.items()}
        return self._operation(
            "deployModel", name, _TYPE + "DeployModelResponse", {"deployedModel": deployed}
        )

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
        if self._failing("undeployModel"):
            return self._operation("undeployModel", name, "", {})
        endpoint["deployedModels"] = remaining
        endpoint["trafficSplit"] = (
            {k: v for k, v in split.items() if k != target} if remaining else {}
        )
        return self._operation("undeployModel", name, _TYPE + "UndeployModelResponse", {})

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
        if self._failing("mutateDeployedModel"):
            return self._operation("mutateDeployedModel", name, "", {})
        source = change.get("dedicatedResources") or {}
        for path in paths:
            key = allowed[path]
            if key in source:
                target["dedicatedResources"][key] = source[key]
            else:
                target["dedicatedResources"].pop(key, None)
        return self._operation(
            "mutateDeployedModel",
            name,
            _TYPE + "MutateDeployedModelResponse",
            {"deployedModel": target},
        )

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
        if self._failing("uploadModel"):
            return self._operation("uploadModel", parent, "", {})
        model.update(name=name, versionId="1")
        self.models[name] = model
        return self._operation(
            "uploadModel",
            parent,
            _TYPE + "UploadModelResponse",
            {"model": name, "modelVersionId": "1"},
        )

    def _getModel(self, name: str, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        return self._model(name)

    def _deleteModel(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        model = self._model(name)
        users = [
            e["name"]
            for e in self.endpoints.values()
            if any(d["model"].split("@")[0] == model["name"] for d in e["deployedModels"])
        ]
        if users:
            raise ApiError(
                400, f"Model {model['name']} is deployed to {users}.", "FAILED_PRECONDITION"
            )
        del self.models[model["name"]]
        return self._operation("deleteModel", name, "type.googleapis.com/google.protobuf.Empty", {})

    def _getOperation(
        self, name: str, body: dict[str, Any], query: dict[str, str]
    ) -> dict[str, Any]:
        operation = self.operations.get(name)
        if operation is None:
            raise ApiError(404, f'Operation "{name}" not found.')
        return operation
