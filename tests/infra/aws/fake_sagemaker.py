"""A small, honest fake of the SageMaker control-plane calls moto does not implement, for boto3.

moto implements ``UpdateEndpointWeightsAndCapacities`` but not ``UpdateEndpoint``, and none of
the states an update goes through. This fake speaks SageMaker's JSON 1.1 protocol
(``X-Amz-Target: SageMaker.<Operation>``) on 127.0.0.1, so the real boto3 client talks to it
(``endpoint_url`` or ``AWS_ENDPOINT_URL_SAGEMAKER``). Errors are ``{"__type", "message"}``
bodies, which botocore raises as ``ClientError`` with that code.

Served: models, endpoint configurations and endpoints (create, describe, list, delete),
``UpdateEndpoint`` (with ``DeploymentConfig``, ``RetainAllVariantProperties`` and
``ExcludeRetainedVariantProperties``), ``UpdateEndpointWeightsAndCapacities``, tags.

Behaviour modelled, each from the API reference (botocore's ``service-2.json`` carries its text)
or a provider issue, as cited in ``tests/infra/aws/test_fake_sagemaker.py``:

- Long-running operations: ``Creating``/``Updating`` -> ``InService``; an update that rolls back
  passes ``RollingBack`` and ends ``InService`` **on the old configuration**, with a
  ``FailureReason`` or (as seen in hashicorp/terraform-provider-aws PR #49020) without one; a
  failed create ends ``Failed``. ``PendingDeploymentSummary`` shows the configuration being
  deployed; ``LastDeploymentConfig`` the deployment configuration of the last update.
- An endpoint that is not ``InService`` cannot be updated.
- ``RetainAllVariantProperties`` keeps each surviving variant's live instance count and weight,
  unless ``ExcludeRetainedVariantProperties`` names them; without it the new configuration's
  initial values apply.
- ``DeleteEndpointConfig`` on a configuration in use is accepted (no error is documented) and
  the endpoint is left pointing at nothing: the next ``UpdateEndpoint`` fails with
  ``Could not find endpoint configuration``.
- An update that removes a variant registered with Application Auto Scaling, or changes its
  instance type, is refused; ``DeleteEndpoint`` deregisters the variants. The registrations
  live in moto's Application Auto Scaling, which this fake asks, as SageMaker asks the service.
- Blue/green limits: canary at most 50 % of a variant's instances, linear steps 10-50 %,
  ``MaximumExecutionTimeoutInSeconds`` 600-28800 and above the configured waits, 1-10 alarms.

States advance one step per ``DescribeEndpoint`` call, so a test is deterministic and needs no
sleeps. What the next operation does is scripted with :meth:`FakeSageMaker.script`.

Not modelled: IAM and KMS, quotas, real containers and health checks, pagination, serverless
and shadow variants beyond storing them, inference components, async inference.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.infra.http_fake import HttpFake

ACCOUNT = "123456789012"
#: Application Auto Scaling's dimension for a variant's instance count.
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_TERMINAL = frozenset({"InService", "Failed", "OutOfService", "UpdateRollbackFailed"})


class ApiError(Exception):
    """An error answer: the ``__type`` code and message (HTTP 400 unless given)."""

    def __init__(self, message: str, code: str = "ValidationException", http: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http = http


@dataclass
class Script:
    """What the next long-running operation of one kind does.

    ``outcome``: ``succeed``; ``roll_back`` (updates: back to the old configuration, ``InService``);
    ``fail`` (creates: ``Failed``; updates: ``UpdateRollbackFailed``); ``stall`` (never ends).
    ``steps``: ``DescribeEndpoint`` calls that see ``Creating``/``Updating``; ``rollback_steps``
    those that see ``RollingBack``. ``reason``: the ``FailureReason`` left behind (None: empty).
    """

    outcome: str = "succeed"
    steps: int = 2
    rollback_steps: int = 1
    reason: str | None = (
        "The primary container for production variant did not pass the ping health check."
    )


@dataclass
class Call:
    """One operation the fake served, in order."""

    operation: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Operation:
    kind: str  # "create" | "update" | "weights"
    script: Script
    target_config: str | None = None
    retain: bool = False
    excluded: frozenset[str] = frozenset()
    weights: list[dict[str, Any]] = field(default_factory=list)
    steps_left: int = 0
    rolling_back: bool = False


class FakeSageMaker(HttpFake):
    """Start with :meth:`start`, point boto3 at :attr:`url`, stop with :meth:`stop`.

    ``autoscaling`` builds a boto3 ``application-autoscaling`` client (e.g. against moto); without
    it no variant counts as registered.
    """

    def __init__(
        self,
        region: str = "us-east-1",
        account: str = ACCOUNT,
        autoscaling: Callable[[], Any] | None = None,
    ) -> None:
        self.region = region
        self.account = account
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        self.calls: list[Call] = []
        self._autoscaling = autoscaling
        self._operations: dict[str, _Operation] = {}
        self._scripts: dict[str, list[Script]] = {"create": [], "update": [], "weights": []}
        self._clock = itertools.count(1_700_000_000)
        self._lock = threading.RLock()

    # -- test controls --------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything (one server can serve a whole test session)."""
        with self._lock:
            for store in (self.models, self.configs, self.endpoints, self.tags, self._operations):
                store.clear()
            self.calls.clear()
            for queue in self._scripts.values():
                queue.clear()

    def script(self, kind: str, script: Script) -> None:
        """Queue what the next ``kind`` operation does: ``create`` (CreateEndpoint), ``update``
        (UpdateEndpoint) or ``weights`` (UpdateEndpointWeightsAndCapacities)."""
        self._scripts[kind].append(script)

    def fail(self, endpoint: str, reason: str | None) -> None:
        """SageMaker leaves ``endpoint`` ``Failed`` on its own: "Endpoint could not be created,
        updated, or re-scaled" (DescribeEndpoint ``EndpointStatus``), e.g. a re-scaling that
        Application Auto Scaling asked for and that failed."""
        with self._lock:
            self._finish(self.endpoints[endpoint], "Failed", reason)

    def operations(self, *names: str) -> list[str]:
        """The operations served so far, in order, optionally only those in ``names``."""
        return [c.operation for c in self.calls if not names or c.operation in names]

    def requests(self, operation: str) -> list[dict[str, Any]]:
        """The request bodies of every ``operation`` call, in order."""
        return [c.body for c in self.calls if c.operation == operation]

    def settle(self, endpoint: str, limit: int = 1000) -> dict[str, Any]:
        """Describe ``endpoint`` until its operation is over (as a waiter would); returns it."""
        for _ in range(limit):
            with self._lock:
                state = self._describe_endpoint({"EndpointName": endpoint})
            if state["EndpointStatus"] in _TERMINAL:
                return state
        raise AssertionError(f"{endpoint} still {state['EndpointStatus']} after {limit} steps")

    # -- protocol -------------------------------------------------------------------------------
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix("SageMaker.")
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
            handler = getattr(self, f"_{_snake(operation)}", None)
            if not target.startswith("SageMaker.") or handler is None:
                raise ApiError(f"{target} is not served by this fake", "UnknownOperationException")
            with self._lock:
                self.calls.append(Call(operation, copy.deepcopy(body)))
                result = handler(body)
            status, payload = 200, result
        except ApiError as error:
            status, payload = error.http, {"__type": error.code, "message": str(error)}
        data = json.dumps(payload, default=str).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/x-amz-json-1.1")
        request.send_header("x-amzn-RequestId", f"fake-{len(self.calls)}")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def _now(self) -> float:
        return float(next(self._clock))

    # -- models ---------------------------------------------------------------------------------
    def _create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["ModelName"]
        arn = self._arn("model", name)
        if name in self.models:
            raise ApiError(f'Cannot create already existing model "{arn}".')
        self.models[name] = {
            **{k: v for k, v in body.items() if k != "Tags"},
            "ModelArn": arn,
            "CreationTime": self._now(),
        }
        self.tags[arn] = list(body.get("Tags") or [])
        return {"ModelArn": arn}

    def _describe_model(self, body: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self._model(body["ModelName"]))

    def _delete_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model = self._model(body["ModelName"])
        del self.models[body["ModelName"]]
        self.tags.pop(model["ModelArn"], None)
        return {}

    def _list_models(self, body: dict[str, Any]) -> dict[str, Any]:
        found = [
            {k: m[k] for k in ("ModelName", "ModelArn", "CreationTime")}
            for m in self.models.values()
            if _contains(m["ModelName"], body.get("NameContains"))
        ]
        return {"Models": found}

    def _model(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise ApiError(f'Could not find model "{self._arn("model", name)}".')
        return self.models[name]

    # -- endpoint configurations ----------------------------------------------------------------
    def _create_endpoint_config(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["EndpointConfigName"]
        arn = self._arn("endpoint-config", name)
        if name in self.configs:
            raise ApiError(f'Cannot create already existing endpoint configuration "{arn}".')
        variants = [*body["ProductionVariants"], *body.get("ShadowProductionVariants", [])]
        for variant in variants:
            self._model(variant["ModelName"])
        self.configs[name] = {
            **{k: v for k, v in body.items() if k != "Tags"},
            "EndpointConfigArn": arn,
            "CreationTime": self._now(),
        }
        self.tags[arn] = list(body.get("Tags") or [])
        return {"EndpointConfigArn": arn}

    def _describe_endpoint_config(self, body: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self._config(body["EndpointConfigName"]))

    def _delete_endpoint_config(self, body: dict[str, Any]) -> dict[str, Any]:
        # Accepted even while an endpoint uses it: the API reference says one "must not", and
        # documents no error for it.
        config = self._config(body["EndpointConfigName"])
        del self.configs[body["EndpointConfigName"]]
        self.tags.pop(config["EndpointConfigArn"], None)
        return {}

    def _list_endpoint_configs(self, body: dict[str, Any]) -> dict[str, Any]:
        found = [
            {k: c[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")}
            for c in self.configs.values()
            if _contains(c["EndpointConfigName"], body.get("NameContains"))
        ]
        return {"EndpointConfigs": found}

    def _config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            arn = self._arn("endpoint-config", name)
            raise ApiError(f'Could not find endpoint configuration "{arn}".')
        return self.configs[name]

    # -- endpoints ------------------------------------------------------------------------------
    def _create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["EndpointName"]
        arn = self._arn("endpoint", name)
        if name in self.endpoints:
            raise ApiError(f'Cannot create already existing endpoint "{arn}".')
        config = self._config(body["EndpointConfigName"])
        deployment = body.get("DeploymentConfig")
        if deployment:
            self._check_deployment(deployment, config)
        now = self._now()
        self.endpoints[name] = {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
            "ProductionVariants": [],
            "_instance_types": {},
        }
        if deployment:
            self.endpoints[name]["LastDeploymentConfig"] = copy.deepcopy(deployment)
        self.tags[arn] = list(body.get("Tags") or [])
        self._begin(name, _Operation("create", self._next("create"), config["EndpointConfigName"]))
        return {"EndpointArn": arn}

    def _describe_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["EndpointName"]
        endpoint = self._endpoint(name)
        self._advance(name)
        if name not in self.endpoints:  # the deletion finished with this step
            self._endpoint(name)
        visible = {k: v for k, v in endpoint.items() if not k.startswith("_")}
        return copy.deepcopy(visible)

    def _list_endpoints(self, body: dict[str, Any]) -> dict[str, Any]:
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        found = [
            {k: e[k] for k in keys}
            for e in self.endpoints.values()
            if _contains(e["EndpointName"], body.get("NameContains"))
        ]
        return {"Endpoints": found}

    def _update_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["EndpointName"]
        endpoint = self._ready(name)
        self._config(endpoint["EndpointConfigName"])  # a deleted live config breaks updates
        config = self._config(body["EndpointConfigName"])
        self._check_autoscaling(endpoint, config)
        deployment = body.get("DeploymentConfig")
        if deployment is None and body.get("RetainDeploymentConfig"):
            deployment = endpoint.get("LastDeploymentConfig")
        if deployment:
            self._check_deployment(deployment, config)
            endpoint["LastDeploymentConfig"] = copy.deepcopy(deployment)
        excluded = {
            p["VariantPropertyType"] for p in body.get("ExcludeRetainedVariantProperties", [])
        }
        operation = _Operation(
            "update",
            self._next("update"),
            config["EndpointConfigName"],
            retain=bool(body.get("RetainAllVariantProperties")),
            excluded=frozenset(excluded),
        )
        endpoint.pop("FailureReason", None)
        endpoint["PendingDeploymentSummary"] = {
            "EndpointConfigName": config["EndpointConfigName"],
            "ProductionVariants": [
                {"VariantName": v["VariantName"], "InstanceType": v.get("InstanceType")}
                for v in config["ProductionVariants"]
            ],
            "StartTime": self._now(),
        }
        self._begin(name, operation)
        return {"EndpointArn": endpoint["EndpointArn"]}

    def _update_endpoint_weights_and_capacities(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["EndpointName"]
        endpoint = self._ready(name)
        live = {v["VariantName"] for v in endpoint["ProductionVariants"]}
        seen: set[str] = set()
        for desired in body["DesiredWeightsAndCapacities"]:
            variant = desired["VariantName"]
            if variant in seen:
                raise ApiError(f'The variant name "{variant}" was non-unique within the request.')
            if variant not in live:
                raise ApiError(
                    f'The variant name(s) "{variant}" is/are not present within endpoint '
                    f'configuration "{endpoint["EndpointConfigName"]}".'
                )
            seen.add(variant)
        endpoint.pop("FailureReason", None)
        operation = _Operation("weights", self._next("weights"))
        operation.weights = copy.deepcopy(body["DesiredWeightsAndCapacities"])
        self._begin(name, operation)
        return {"EndpointArn": endpoint["EndpointArn"]}

    def _delete_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["EndpointName"]
        endpoint = self._endpoint(name)
        self._deregister_all(endpoint)
        self._operations.pop(name, None)
        endpoint["EndpointStatus"] = "Deleting"
        endpoint.pop("PendingDeploymentSummary", None)
        return {}

    def _endpoint(self, name: str) -> dict[str, Any]:
        if name not in self.endpoints:
            raise ApiError(f'Could not find endpoint "{self._arn("endpoint", name)}".')
        return self.endpoints[name]

    def _ready(self, name: str) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        if endpoint["EndpointStatus"] != "InService":
            raise ApiError(f'Cannot update in-progress endpoint "{endpoint["EndpointArn"]}".')
        return endpoint

    # -- tags -----------------------------------------------------------------------------------
    def _list_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": copy.deepcopy(self.tags.get(body["ResourceArn"], []))}

    def _add_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        current = {t["Key"]: t for t in self.tags.setdefault(body["ResourceArn"], [])}
        current.update({t["Key"]: t for t in body["Tags"]})
        self.tags[body["ResourceArn"]] = list(current.values())
        return {"Tags": body["Tags"]}

    # -- long-running operations ----------------------------------------------------------------
    def _next(self, kind: str) -> Script:
        queue = self._scripts[kind]
        return queue.pop(0) if queue else Script(steps=1)

    def _begin(self, name: str, operation: _Operation) -> None:
        operation.steps_left = operation.script.steps
        endpoint = self.endpoints[name]
        endpoint["EndpointStatus"] = "Creating" if operation.kind == "create" else "Updating"
        endpoint["LastModifiedTime"] = self._now()
        self._operations[name] = operation

    def _advance(self, name: str) -> None:
        """One step of whatever ``name`` is doing (called by each DescribeEndpoint)."""
        endpoint = self.endpoints[name]
        if endpoint["EndpointStatus"] == "Deleting":
            if endpoint.pop("_seen_deleting", False):  # one describe sees Deleting, then gone
                del self.endpoints[name]
                self.tags.pop(endpoint["EndpointArn"], None)
            else:
                endpoint["_seen_deleting"] = True
            return
        operation = self._operations.get(name)
        if operation is None or operation.script.outcome == "stall":
            return
        if operation.steps_left > 0:
            operation.steps_left -= 1
            return
        outcome = operation.script.outcome
        if outcome == "succeed":
            self._complete(endpoint, operation)
        elif operation.kind == "create":  # a create cannot roll back: it fails
            self._finish(endpoint, "Failed", operation.script.reason)
        elif outcome == "roll_back":
            if not operation.rolling_back:
                operation.rolling_back = True
                operation.steps_left = operation.script.rollback_steps
                endpoint["EndpointStatus"] = "RollingBack"
                return
            self._finish(endpoint, "InService", operation.script.reason)
        else:  # "fail" during an update: the rollback itself failed
            self._finish(endpoint, "UpdateRollbackFailed", operation.script.reason)

    def _finish(self, endpoint: dict[str, Any], status: str, reason: str | None) -> None:
        endpoint["EndpointStatus"] = status
        endpoint["LastModifiedTime"] = self._now()
        endpoint.pop("PendingDeploymentSummary", None)
        if reason:
            endpoint["FailureReason"] = reason
        self._operations.pop(endpoint["EndpointName"], None)

    def _complete(self, endpoint: dict[str, Any], operation: _Operation) -> None:
        if operation.kind == "weights":
            for desired in operation.weights:
                for variant in endpoint["ProductionVariants"]:
                    if variant["VariantName"] != desired["VariantName"]:
                        continue
                    if "DesiredWeight" in desired:
                        variant["CurrentWeight"] = variant["DesiredWeight"] = float(
                            desired["DesiredWeight"]
                        )
                    if "DesiredInstanceCount" in desired:
                        count = int(desired["DesiredInstanceCount"])
                        variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = count
        else:
            assert operation.target_config is not None
            self._deploy(endpoint, self.configs[operation.target_config], operation)
        self._finish(endpoint, "InService", None)

    def _deploy(
        self, endpoint: dict[str, Any], config: dict[str, Any], operation: _Operation
    ) -> None:
        live = {v["VariantName"]: v for v in endpoint["ProductionVariants"]}
        variants = []
        for spec in config["ProductionVariants"]:
            old = live.get(spec["VariantName"]) if operation.retain else None
            weight = float(spec.get("InitialVariantWeight", 1.0))
            count = spec.get("InitialInstanceCount")
            if old is not None and "DesiredWeight" not in operation.excluded:
                weight = old["CurrentWeight"]
            if old is not None and "DesiredInstanceCount" not in operation.excluded:
                count = old.get("CurrentInstanceCount", count)
            model = self.models.get(spec["ModelName"], {})
            image = model.get("PrimaryContainer", {}).get("Image")
            summary: dict[str, Any] = {
                "VariantName": spec["VariantName"],
                "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image}]
                if image
                else [],
                "CurrentWeight": weight,
                "DesiredWeight": weight,
            }
            if count is not None:
                summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count
            if "ServerlessConfig" in spec:
                summary["CurrentServerlessConfig"] = spec["ServerlessConfig"]
            variants.append(summary)
        endpoint["ProductionVariants"] = variants
        endpoint["_instance_types"] = {
            v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]
        }
        shadows = config.get("ShadowProductionVariants")
        if shadows:
            endpoint["ShadowProductionVariants"] = [
                {
                    "VariantName": s["VariantName"],
                    "CurrentWeight": float(s.get("InitialVariantWeight", 1.0)),
                    "CurrentInstanceCount": s.get("InitialInstanceCount"),
                }
                for s in shadows
            ]
        else:
            endpoint.pop("ShadowProductionVariants", None)
        if config.get("DataCaptureConfig"):
            capture = config["DataCaptureConfig"]
            endpoint["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True),
                "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
                "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"],
                **({"KmsKeyId": capture["KmsKeyId"]} if capture.get("KmsKeyId") else {}),
            }
        else:
            endpoint.pop("DataCaptureConfig", None)
        endpoint["EndpointConfigName"] = config["EndpointConfigName"]

    # -- rules ----------------------------------------------------------------------------------
    def _check_deployment(self, deployment: dict[str, Any], config: dict[str, Any]) -> None:
        """Blue/green limits from the API reference (BlueGreenUpdatePolicy, TrafficRoutingConfig,
        CapacitySize, AutoRollbackConfig)."""
        alarms = (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms")
        if alarms is not None and not 1 <= len(alarms) <= 10:
            raise ApiError(
                f"AutoRollbackConfiguration.Alarms must hold 1-10 alarms, not {len(alarms)}."
            )
        policy = deployment.get("BlueGreenUpdatePolicy")
        if not policy:
            return
        routing = policy["TrafficRoutingConfiguration"]
        waits = int(policy.get("TerminationWaitInSeconds", 0))
        kind = routing["Type"]
        interval = int(routing.get("WaitIntervalInSeconds", 0))
        counts = [
            int(v["InitialInstanceCount"])
            for v in config["ProductionVariants"]
            if v.get("InitialInstanceCount") is not None
        ]
        size = routing.get("CanarySize") if kind == "CANARY" else routing.get("LinearStepSize")
        shifts = 1
        if size is not None:
            field_name = "CanarySize" if kind == "CANARY" else "LinearStepSize"
            unit, value = size["Type"], int(size["Value"])
            for count in counts:
                # a step is whole instances of the new fleet: at least one, at most half of it
                step = value if unit == "INSTANCE_COUNT" else math.ceil(value * count / 100)
                share = step / count * 100
                if 2 * step > count or (kind == "LINEAR" and share < 10):
                    low = "10%" if kind == "LINEAR" else "one instance"
                    raise ApiError(
                        f"{field_name} {value} {unit} is {step} of {count} instances; it must be "
                        f"between {low} and 50% of the variant's total instance count."
                    )
                shifts = max(shifts, 2 if kind == "CANARY" else math.ceil(count / step))
        timeout = policy.get("MaximumExecutionTimeoutInSeconds")
        if timeout is not None:
            if not 600 <= int(timeout) <= 28800:
                raise ApiError(
                    f"MaximumExecutionTimeoutInSeconds {timeout} is not within 600-28800."
                )
            if int(timeout) <= shifts * interval + waits:
                raise ApiError(
                    f"MaximumExecutionTimeoutInSeconds {timeout} must be larger than the total "
                    f"waiting time ({shifts * interval + waits} s)."
                )

    def _registered(self, endpoint: dict[str, Any]) -> list[str]:
        """Variants of ``endpoint`` registered as scalable targets (asked of the service)."""
        if self._autoscaling is None:
            return []
        name = endpoint["EndpointName"]
        ids = [
            f"endpoint/{name}/variant/{v['VariantName']}" for v in endpoint["ProductionVariants"]
        ]
        if not ids:
            return []
        found = self._autoscaling().describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=ids, ScalableDimension=SCALABLE_DIMENSION
        )["ScalableTargets"]
        return [t["ResourceId"].rsplit("/", 1)[1] for t in found]

    def _check_autoscaling(self, endpoint: dict[str, Any], config: dict[str, Any]) -> None:
        new = {v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]}
        old = endpoint["_instance_types"]
        blocked = [
            variant
            for variant in self._registered(endpoint)
            if variant not in new or new[variant] != old.get(variant)
        ]
        if blocked:
            raise ApiError(
                f'The variant(s) {sorted(blocked)} of endpoint "{endpoint["EndpointArn"]}" are '
                "registered with Application Auto Scaling: an update cannot remove them or change "
                "their instance type. Deregister them (DeregisterScalableTarget) first."
            )

    def _deregister_all(self, endpoint: dict[str, Any]) -> None:
        for variant in self._registered(endpoint):
            self._autoscaling().deregister_scalable_target(  # type: ignore[misc]
                ServiceNamespace="sagemaker",
                ResourceId=f"endpoint/{endpoint['EndpointName']}/variant/{variant}",
                ScalableDimension=SCALABLE_DIMENSION,
            )


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def _contains(name: str, part: str | None) -> bool:
    return part is None or part.lower() in name.lower()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` (bounded) until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
