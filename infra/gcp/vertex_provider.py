"""Pulumi dynamic provider: models uploaded and deployed to a Vertex AI endpoint, with the traffic
split given by variant name.

pulumi-gcp can create the endpoint but not upload or deploy a model, and its ``traffic_split`` is
keyed by deployed-model IDs that only exist after deployment. This provider fills that gap with
the ``google-cloud-aiplatform`` low-level clients (REST transport):

- create: upload one model per variant, deploy each, then set the traffic split by name.
- update: a weight-only change PATCHes the traffic split in place; a replica/autoscaling-only
  change mutates the deployed model in place; a changed image, artifact, environment, machine,
  accelerator or service account uploads and deploys the new model first (0% traffic), moves the
  traffic, and only then undeploys the old deployed model and deletes its model.
- delete: takes the traffic away, undeploys every deployed model and deletes the uploaded models.
- read (refresh): forgets deployments removed by hand and records the live split by name.

Every long-running operation is awaited with the resource's timeout; failures raise
:class:`VertexDeploymentError` naming the step, the variant and the operation. A create or update
that fails before traffic moves rolls back what it deployed, so nothing is left running untracked.

Pulumi pickles this provider with the program, so it imports its dependencies inside methods and
keeps no state. Credentials are never inputs or outputs: the clients use Application Default
Credentials at run time (anonymous for an ``http://`` API endpoint, i.e. a local emulator).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from serving import contract

if TYPE_CHECKING:
    from google.cloud.aiplatform_v1 import EndpointServiceClient, ModelServiceClient

# The serving container's contract with Vertex AI (the server reads AIP_* which Vertex derives
# from these): routes no other protocol of the server uses, on port 8080.
CONTAINER_PORT = contract.PORT
PREDICT_ROUTE = contract.VERTEX_PREDICT_ROUTE
HEALTH_ROUTE = contract.VERTEX_HEALTH_ROUTE
CPU_METRIC = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
DUTY_CYCLE_METRIC = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
CALL_TIMEOUT_SECONDS = 60.0

# Inputs whose change means a different endpoint: replace the whole resource.
_REPLACE_KEYS = ("project", "region", "endpoint")
_INPUT_KEYS = (*_REPLACE_KEYS, "api_endpoint", "timeout_seconds", "variants", "traffic")
# Variant fields that need a new model version and deployment when they change.
_RELEASE_KEYS = (
    "image",
    "artifact_uri",
    "env",
    "model_display_name",
    "labels",
    "machine_type",
    "accelerator_type",
    "accelerator_count",
    "service_account",
)
# Variant fields a deployed model can change in place (mutateDeployedModel).
_SCALING_KEYS = (
    "min_replicas",
    "max_replicas",
    "cpu_utilization_target",
    "accelerator_duty_cycle_target",
)


class VertexDeploymentError(RuntimeError):
    """A Vertex AI call failed or timed out; the message names the step and the variant."""


def _normal(value: Any) -> Any:
    """Pulumi hands numbers over as floats; compare and send whole numbers as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def release_of(variant: dict[str, Any]) -> str:
    """Fingerprint of what a deployment is made of; a change means deploy anew."""
    spec = {key: _normal(variant.get(key)) for key in _RELEASE_KEYS}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def scaling_of(variant: dict[str, Any]) -> list[int | None]:
    """Replica bounds and autoscaling targets, which change in place."""
    return [_normal(variant.get(key)) for key in _SCALING_KEYS]


def inputs_of(props: dict[str, Any]) -> dict[str, Any]:
    """The inputs this provider acts on, normalised (state also holds outputs)."""
    return {key: _normal(props.get(key)) for key in _INPUT_KEYS}


class _Vertex:
    """The two API clients plus the endpoint and the operation timeout of one resource."""

    def __init__(self, props: dict[str, Any]) -> None:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform_v1

        api = str(props["api_endpoint"])
        options = ClientOptions(api_endpoint=api)
        credentials = AnonymousCredentials() if api.startswith("http://") else None
        self.endpoint_name = str(props["endpoint"])
        self.parent = f"projects/{props['project']}/locations/{props['region']}"
        self.timeout = float(props["timeout_seconds"])
        self.endpoints: EndpointServiceClient = aiplatform_v1.EndpointServiceClient(
            credentials=credentials, transport="rest", client_options=options
        )
        self.models: ModelServiceClient = aiplatform_v1.ModelServiceClient(
            credentials=credentials, transport="rest", client_options=options
        )

    # -- calls --------------------------------------------------------------------------------
    def call(self, what: str, function: Any, **kwargs: Any) -> Any:
        """One API call; a failure becomes a VertexDeploymentError naming ``what``."""
        from google.api_core import exceptions

        try:
            return function(**kwargs, timeout=CALL_TIMEOUT_SECONDS)
        except exceptions.NotFound as exc:
            raise VertexDeploymentError(f"{what}: not found (404): {exc.message}") from exc
        except exceptions.GoogleAPICallError as exc:
            raise VertexDeploymentError(f"{what}: {exc.code} {exc.message}") from exc

    def wait(self, what: str, function: Any, **kwargs: Any) -> Any:
        """Start a long-running operation and wait for its result within the timeout."""
        import concurrent.futures

        from google.api_core import exceptions

        operation = self.call(what, function, **kwargs)
        name = operation.operation.name
        try:
            return operation.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError as exc:
            raise VertexDeploymentError(
                f"{what}: operation {name} did not finish within {self.timeout:.0f} s; it may "
                "still complete - check the endpoint, then run `pulumi refresh` and `pulumi up`"
            ) from exc
        except exceptions.GoogleAPICallError as exc:
            raise VertexDeploymentError(f"{what}: operation {name} failed: {exc.message}") from exc

    def live_split(self) -> tuple[set[str], dict[str, int]]:
        """Deployed model IDs on the endpoint and its traffic split by ID."""
        endpoint = self.call(
            f"reading endpoint {self.endpoint_name}",
            self.endpoints.get_endpoint,
            name=self.endpoint_name,
        )
        return {d.id for d in endpoint.deployed_models}, dict(endpoint.traffic_split)

    def set_split(self, split: dict[str, int]) -> None:
        from google.cloud import aiplatform_v1
        from google.protobuf import field_mask_pb2

        self.call(
            f"setting the traffic split of {self.endpoint_name} to {split}",
            self.endpoints.update_endpoint,
            endpoint=aiplatform_v1.Endpoint(name=self.endpoint_name, traffic_split=split),
            update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
        )

    # -- models -------------------------------------------------------------------------------
    def upload(self, variant: dict[str, Any]) -> str:
        """Upload the variant's model version; returns the model resource name."""
        from google.cloud import aiplatform_v1

        env = [aiplatform_v1.EnvVar(name=k, value=v) for k, v in sorted(variant["env"].items())]
        model = aiplatform_v1.Model(
            display_name=variant["model_display_name"],
            artifact_uri=variant["artifact_uri"],
            labels={**variant["labels"], "ml-endpoints-release": release_of(variant)},
            container_spec=aiplatform_v1.ModelContainerSpec(
                image_uri=variant["image"],
                env=env,
                ports=[aiplatform_v1.Port(container_port=CONTAINER_PORT)],
                predict_route=PREDICT_ROUTE,
                health_route=HEALTH_ROUTE,
            ),
        )
        response = self.wait(
            f"uploading the model of variant {variant['name']!r}",
            self.models.upload_model,
            parent=self.parent,
            model=model,
        )
        return str(response.model)

    def delete_model(self, model: str) -> None:
        """Delete an uploaded model; one already gone is fine."""
        from google.api_core import exceptions

        try:
            self.wait(f"deleting model {model}", self.models.delete_model, name=model)
        except VertexDeploymentError as exc:
            if not isinstance(exc.__cause__, exceptions.NotFound):
                raise

    # -- deployed models ----------------------------------------------------------------------
    def deploy(self, variant: dict[str, Any], model: str, split: dict[str, int]) -> str:
        """Deploy ``model`` with ``split`` (``"0"`` = this one); returns the deployed model ID."""
        from google.cloud import aiplatform_v1

        accelerator = variant.get("accelerator_type")
        machine = aiplatform_v1.MachineSpec(machine_type=variant["machine_type"])
        if accelerator:
            machine.accelerator_type = getattr(aiplatform_v1.AcceleratorType, accelerator)
            machine.accelerator_count = int(variant["accelerator_count"])
        resources = _dedicated_resources(variant)
        resources.machine_spec = machine
        deployed = aiplatform_v1.DeployedModel(
            model=model,
            display_name=variant["name"],
            dedicated_resources=resources,
            service_account=variant.get("service_account") or "",
        )
        response = self.wait(
            f"deploying variant {variant['name']!r} ({model}) to {self.endpoint_name}",
            self.endpoints.deploy_model,
            endpoint=self.endpoint_name,
            deployed_model=deployed,
            traffic_split=split,
        )
        return str(response.deployed_model.id)

    def rescale(self, variant: dict[str, Any], deployed_model_id: str) -> None:
        """Change replica bounds and autoscaling targets of a deployed model in place."""
        from google.cloud import aiplatform_v1
        from google.protobuf import field_mask_pb2

        paths = [
            "dedicated_resources.min_replica_count",
            "dedicated_resources.max_replica_count",
            "dedicated_resources.autoscaling_metric_specs",
        ]
        self.wait(
            f"rescaling variant {variant['name']!r} (deployed model {deployed_model_id})",
            self.endpoints.mutate_deployed_model,
            endpoint=self.endpoint_name,
            deployed_model=aiplatform_v1.DeployedModel(
                id=deployed_model_id, dedicated_resources=_dedicated_resources(variant)
            ),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )

    def undeploy(self, deployed_model_id: str) -> None:
        """Undeploy a deployed model that holds no traffic; one already gone is fine."""
        from google.api_core import exceptions

        try:
            self.wait(
                f"undeploying deployed model {deployed_model_id} from {self.endpoint_name}",
                self.endpoints.undeploy_model,
                endpoint=self.endpoint_name,
                deployed_model_id=deployed_model_id,
            )
        except VertexDeploymentError as exc:
            if not isinstance(exc.__cause__, exceptions.NotFound):
                raise

    def retire(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Undeploy and delete each record; returns those that failed, with the error."""
        failed = []
        for record in records:
            try:
                if record.get("deployed_model_id"):
                    self.undeploy(record["deployed_model_id"])
                self.delete_model(record["model"])
            except VertexDeploymentError as exc:
                failed.append({**record, "error": str(exc)})
        return failed


def _dedicated_resources(variant: dict[str, Any]) -> Any:
    from google.cloud import aiplatform_v1

    low = int(variant["min_replicas"])
    specs = [
        aiplatform_v1.AutoscalingMetricSpec(metric_name=metric, target=int(variant[key]))
        for metric, key in (
            (CPU_METRIC, "cpu_utilization_target"),
            (DUTY_CYCLE_METRIC, "accelerator_duty_cycle_target"),
        )
        if variant.get(key) is not None
    ]
    return aiplatform_v1.DedicatedResources(
        min_replica_count=low,
        max_replica_count=int(variant.get("max_replicas") or low),
        autoscaling_metric_specs=specs,
    )


def _reconcile(props: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Bring the endpoint from ``previous`` (state outputs, ``{}`` on create) to ``props``."""
    inputs = inputs_of(props)
    vertex = _Vertex(inputs)
    live_ids, split = vertex.live_split()
    before: dict[str, dict[str, Any]] = previous.get("deployed") or {}
    pending: list[dict[str, Any]] = list(previous.get("cleanup_pending") or [])
    deployed: dict[str, dict[str, Any]] = {}
    created: list[dict[str, Any]] = []
    retired: list[dict[str, Any]] = []
    variants = {v["name"]: v for v in inputs["variants"]}
    try:
        for name, variant in variants.items():
            old = before.get(name)
            release = release_of(variant)
            if old and old["release"] == release and old["deployed_model_id"] in live_ids:
                if old["scaling"] != scaling_of(variant):
                    vertex.rescale(variant, old["deployed_model_id"])
                deployed[name] = {**old, "scaling": scaling_of(variant)}
                continue
            if old:
                retired.append(old)
            model = vertex.upload(variant)
            created.append({"model": model, "deployed_model_id": None})
            # A new deployment joins with 0% (100% on an endpoint serving nothing yet); the
            # traffic moves once every variant is deployed.
            share = 0 if sum(split.values()) == 100 else 100
            deployed_id = vertex.deploy(
                variant, model, {**split, "0": 0} if share == 0 else {"0": 100}
            )
            created[-1]["deployed_model_id"] = deployed_id
            split = {**split, deployed_id: 0} if share == 0 else {deployed_id: 100}
            live_ids.add(deployed_id)
            deployed[name] = {
                "model": model,
                "deployed_model_id": deployed_id,
                "release": release,
                "scaling": scaling_of(variant),
            }
        wanted = {deployed[n]["deployed_model_id"]: int(p) for n, p in inputs["traffic"].items()}
        if {k: v for k, v in split.items() if v} != {k: v for k, v in wanted.items() if v}:
            vertex.set_split(wanted)
    except VertexDeploymentError as exc:
        leftovers = vertex.retire(list(reversed(created)))
        if leftovers:
            raise VertexDeploymentError(
                f"{exc}; rolling back also failed, remove these by hand: {leftovers}"
            ) from exc
        raise
    retired += [record for name, record in before.items() if name not in variants]
    # Traffic has moved: the retired deployments hold none. Failures here are kept in state and
    # retried on the next update or delete, so nothing is forgotten.
    failed = vertex.retire(pending + retired)
    return {**inputs, "deployed": deployed, "cleanup_pending": failed}


class VertexDeploymentProvider(ResourceProvider):
    """Create / diff / update / delete for :class:`infra.gcp.vertex.VertexDeployment`."""

    serialize_as_secret_always = False  # no secrets are captured: keep the state readable

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _reconcile(props, {})
        return CreateResult(id_=str(outs["endpoint"]) + "/deployment", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = inputs_of(olds), inputs_of(news)
        replaces = [key for key in _REPLACE_KEYS if old[key] != new[key]]
        changed = [key for key in _INPUT_KEYS if old[key] != new[key]]
        return DiffResult(
            changes=bool(changed or olds.get("cleanup_pending")),
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_reconcile(news, olds))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """``pulumi refresh``: forget deployments removed by hand (the next update deploys them
        again) and record the live traffic split, so a split changed by hand is set back."""
        from google.api_core import exceptions

        vertex = _Vertex(inputs_of(props))
        try:
            live_ids, split = vertex.live_split()
        except VertexDeploymentError as exc:
            if isinstance(exc.__cause__, exceptions.NotFound):
                return ReadResult(id_=None, outs={})  # the endpoint is gone, and all with it
            raise
        deployed: dict[str, dict[str, Any]] = {}
        pending = list(props.get("cleanup_pending") or [])
        for name, record in (props.get("deployed") or {}).items():
            if record["deployed_model_id"] in live_ids:
                deployed[name] = record
            else:  # its uploaded model is still ours to delete
                gone = f"deployed model {record['deployed_model_id']} was removed outside Pulumi"
                pending.append({**record, "deployed_model_id": None, "error": gone})
        traffic = {name: split.get(r["deployed_model_id"], 0) for name, r in deployed.items()}
        outs = {**props, "deployed": deployed, "traffic": traffic, "cleanup_pending": pending}
        return ReadResult(id_=id_, outs=outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from google.api_core import exceptions

        vertex = _Vertex(inputs_of(props))
        records = list((props.get("deployed") or {}).values())
        records += list(props.get("cleanup_pending") or [])
        try:
            _, split = vertex.live_split()
        except VertexDeploymentError as exc:
            if not isinstance(exc.__cause__, exceptions.NotFound):
                raise
            split = {}  # the endpoint is gone, and its deployments with it
            records = [{**r, "deployed_model_id": None} for r in records]
        ours = {r["deployed_model_id"] for r in records}
        others = {k: v for k, v in split.items() if v and k not in ours}
        if others and sum(others.values()) != 100:
            raise VertexDeploymentError(
                f"{vertex.endpoint_name} also sends traffic to deployed models not managed "
                f"here ({sorted(others)}); give them 100% before deleting this deployment"
            )
        if any(v for k, v in split.items() if k in ours):
            vertex.set_split(others)
        failed = vertex.retire(records)
        if failed:
            raise VertexDeploymentError(
                "could not remove: " + "; ".join(f["error"] for f in failed)
            )
