"""The deployed models of one Vertex AI endpoint, reconciled so that no failure leaves anything
running that no state knows about.

A dynamic provider's state is written only when create/update *returns*: an exception, a
timeout or a killed process records nothing. So the cloud itself is the journal:

- **Ownership at birth.** Every model this code uploads carries :data:`OWNER_LABEL` (a hash of
  the Pulumi project, stack and resource), :data:`RELEASE_LABEL` and the variant label; a
  deployed model is ours when its model is.
- **One ID per upload.** The deployed-model ID is derived from the uploaded model's name
  (``DeployedModel.id`` is settable, 1-10 digits: python-aiplatform
  ``aiplatform_v1/types/endpoint.py``), so a retried deploy of the same model collides with
  itself instead of creating a second copy.
- **In-flight operations first.** Before changing anything, unfinished operations of the
  endpoint are awaited; if one still runs, nothing is changed and the error says so. A client
  timeout does not stop a Vertex operation (the SDK itself waits forever,
  ``aiplatform/models.py`` ``operation_future.result(timeout=None)``).
- **Inventory and adoption.** Every run reads the endpoint and the owned models: an owned
  deployment of a wanted (variant, release) that nothing records is adopted, any other owned
  and unrecorded one is retired; an owned model that was uploaded but never deployed is reused.
- **Rollback of any failure.** ``BaseException`` (API errors, bugs, interrupts) undeploys and
  deletes what this run started and holds no traffic; what cannot be removed yet carries the
  owner label and is found by the next run.

Updates: a weight-only change PATCHes the split; replica/autoscaling changes mutate the deployed
model; a label-only change relabels the models; a changed image, artifact, environment, machine,
accelerator or service account uploads and deploys the new model first (0% traffic), moves the
traffic, then undeploys the old one. A private endpoint serves one deployed model
(https://cloud.google.com/vertex-ai/docs/predictions/using-private-endpoints), so there the old
deployment is undeployed first (a short gap) and restored if the new one fails.

Credentials are never inputs or outputs: Application Default Credentials at run time (anonymous
for an ``http://`` API endpoint, i.e. a local emulator).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serving import contract

if TYPE_CHECKING:
    from google.cloud.aiplatform_v1 import EndpointServiceClient, ModelServiceClient

CONTAINER_PORT = contract.PORT
PREDICT_ROUTE = contract.VERTEX_PREDICT_ROUTE
HEALTH_ROUTE = contract.VERTEX_HEALTH_ROUTE
CPU_METRIC = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
DUTY_CYCLE_METRIC = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
CALL_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.5

OWNER_LABEL = "ml-endpoints-owner"
RELEASE_LABEL = "ml-endpoints-release"
VARIANT_LABEL = "ml-endpoints-variant"
"""Set by the component among the variant's own labels (``infra.gcp.vertex.variant_props``)."""
_OWN_LABELS = (OWNER_LABEL, RELEASE_LABEL)
_MODEL_NAME = re.compile(r"projects/[^/]+/locations/[^/]+/models/[^/@]+")

# Inputs whose change means a different endpoint: replace the whole resource.
REPLACE_KEYS = ("project", "region", "endpoint")
INPUT_KEYS = (*REPLACE_KEYS, "api_endpoint", "timeout_seconds", "variants", "traffic")
# Variant fields that need a new model version and deployment when they change.
RELEASE_KEYS = (
    "image",
    "artifact_uri",
    "env",
    "model_display_name",
    "machine_type",
    "accelerator_type",
    "accelerator_count",
    "service_account",
)
# Variant fields a deployed model can change in place (mutateDeployedModel).
SCALING_KEYS = (
    "min_replicas",
    "max_replicas",
    "cpu_utilization_target",
    "accelerator_duty_cycle_target",
)


class VertexDeploymentError(RuntimeError):
    """A Vertex AI call failed or timed out; the message names the step and the variant."""


# ---------------------------------------------------------------------------------- values


def normal(value: Any) -> Any:
    """Pulumi hands numbers over as floats; compare and send whole numbers as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    return value


def _digest(spec: Any) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def release_of(variant: dict[str, Any]) -> str:
    """Fingerprint of what a deployment is made of; a change means deploy anew."""
    sealed = _sealed(variant)
    return _digest({key: normal(sealed.get(key)) for key in RELEASE_KEYS})


def legacy_release_of(variant: dict[str, Any]) -> str:
    """The fingerprint code before labels changed in place wrote into state (labels included)."""
    keys = (*RELEASE_KEYS[:4], "labels", *RELEASE_KEYS[4:])
    sealed = _sealed(variant)
    return _digest({key: normal(sealed.get(key)) for key in keys})


def _sealed(variant: dict[str, Any]) -> dict[str, Any]:
    """``variant`` with its secret env values (``secret_env``: name -> fingerprint of the
    ciphertext, :mod:`infra.secret_values`) replaced by their fingerprints: the release label
    and state record a hash that cannot be used to test guesses of a secret."""
    secret = variant.get("secret_env") or {}
    if not secret:
        return variant
    env = {**(variant.get("env") or {}), **{k: f"[secret {fp}]" for k, fp in secret.items()}}
    return {**variant, "env": env}


def scaling_of(variant: dict[str, Any]) -> list[int | None]:
    """Replica bounds and autoscaling targets, which change in place."""
    return [normal(variant.get(key)) for key in SCALING_KEYS]


def inputs_of(props: dict[str, Any]) -> dict[str, Any]:
    """The inputs the provider acts on, normalised (state also holds outputs)."""
    return {key: normal(props.get(key)) for key in INPUT_KEYS}


def owner_of(project: str, stack: str, resource: str) -> str:
    """The :data:`OWNER_LABEL` value of one Pulumi resource (stable across runs and code)."""
    return _digest([project, stack, resource])


def deployed_model_id_for(model: str) -> str:
    """The deployed-model ID of ``model``'s deployment: 10 digits, no leading zero."""
    number = int(hashlib.sha256(model.encode()).hexdigest(), 16)
    return str(1_000_000_000 + number % 9_000_000_000)


def accelerator_enum(name: str) -> Any:
    """``AcceleratorType`` member for ``name``; a clear error if the installed client lacks it."""
    from importlib.metadata import version

    from google.cloud import aiplatform_v1

    members = aiplatform_v1.AcceleratorType.__members__
    if name not in members:
        known = ", ".join(m for m in members if m.startswith("NVIDIA"))
        raise VertexDeploymentError(
            f"accelerator type {name!r} is not known to the installed google-cloud-aiplatform "
            f"{version('google-cloud-aiplatform')} (it knows {known}); upgrade the client or "
            "choose one of those"
        )
    return members[name]


# -------------------------------------------------------------------------------- the API


@dataclass
class Live:
    """What the endpoint holds now: deployed models by ID, the split, and the models we know
    (those of the deployed models and every model carrying our owner label)."""

    deployed: dict[str, Any]
    split: dict[str, int]
    models: dict[str, Any]
    owner: str | None

    def owns(self, model: str) -> bool:
        found = self.models.get(model.split("@")[0])
        return (
            self.owner is not None
            and found is not None
            and _label(found, OWNER_LABEL) == (self.owner)
        )

    def deployments_of(self, model: str) -> list[str]:
        base = model.split("@")[0]
        return [i for i, d in self.deployed.items() if d.model.split("@")[0] == base]


def _label(model: Any, key: str) -> str | None:
    value = dict(model.labels).get(key)
    return None if value is None else str(value)


class VertexApi:
    """The endpoint and model clients of one resource, each call named for its errors."""

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
    def call(self, what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
        """One API call; a failure becomes a VertexDeploymentError naming ``what``."""
        from google.api_core import exceptions

        try:
            return function(**kwargs, timeout=CALL_TIMEOUT_SECONDS)
        except exceptions.NotFound as exc:
            raise VertexDeploymentError(f"{what}: not found (404): {exc.message}") from exc
        except exceptions.GoogleAPICallError as exc:
            raise VertexDeploymentError(f"{what}: {exc.code} {exc.message}") from exc

    def wait(self, what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
        """Start a long-running operation and wait for its result within the timeout."""
        import concurrent.futures

        from google.api_core import exceptions

        operation = self.call(what, function, **kwargs)
        name = operation.operation.name
        try:
            return operation.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError as exc:
            raise VertexDeploymentError(
                f"{what}: operation {name} did not finish within {self.timeout:.0f} s; it keeps "
                "running on Vertex AI - the next `pulumi up` waits for it and adopts or removes "
                "what it made"
            ) from exc
        except exceptions.GoogleAPICallError as exc:
            raise VertexDeploymentError(f"{what}: operation {name} failed: {exc.message}") from exc

    def wait_until_idle(self) -> None:
        """Wait for the endpoint's unfinished operations (a deploy an earlier run gave up on);
        raise, having changed nothing, if one still runs after the timeout."""
        from google.longrunning import operations_pb2

        deadline = time.monotonic() + self.timeout
        while True:
            running: list[str] = []
            token = ""
            while True:
                page = self.call(
                    f"reading endpoint {self.endpoint_name} (its running operations)",
                    self.endpoints.list_operations,
                    request=operations_pb2.ListOperationsRequest(
                        name=self.endpoint_name, page_token=token
                    ),
                )
                running += [o.name for o in page.operations if not o.done]
                token = page.next_page_token
                if not token:
                    break
            if not running:
                return
            if time.monotonic() >= deadline:
                raise VertexDeploymentError(
                    f"{self.endpoint_name} still has running operations {running} after "
                    f"{self.timeout:.0f} s; nothing was changed - run `pulumi up` again once they "
                    "finished"
                )
            time.sleep(POLL_SECONDS)

    def inventory(self, owner: str | None) -> Live:
        """The endpoint's deployed models and split, their models, and the models we own."""
        from google.api_core import exceptions
        from google.cloud import aiplatform_v1

        endpoint = self.call(
            f"reading endpoint {self.endpoint_name}",
            self.endpoints.get_endpoint,
            name=self.endpoint_name,
        )
        models: dict[str, Any] = {}
        if owner is not None:
            listed = self.call(
                f"listing the models labelled {OWNER_LABEL}={owner}",
                self.models.list_models,
                request=aiplatform_v1.ListModelsRequest(
                    parent=self.parent, filter=f'labels.{OWNER_LABEL}="{owner}"'
                ),
            )
            models = {m.name: m for m in listed}
        for deployed in endpoint.deployed_models:
            base = deployed.model.split("@")[0]
            if base in models or not _MODEL_NAME.fullmatch(base):
                continue
            try:
                models[base] = self.call(f"reading model {base}", self.models.get_model, name=base)
            except VertexDeploymentError as exc:
                # Someone else's model (gone, or in a project we cannot read): not ours.
                if not isinstance(exc.__cause__, exceptions.NotFound | exceptions.Forbidden):
                    raise
        return Live(
            deployed={d.id: d for d in endpoint.deployed_models},
            split={k: int(v) for k, v in endpoint.traffic_split.items()},
            models=models,
            owner=owner,
        )

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
    def upload(self, variant: dict[str, Any], owner: str | None) -> str:
        """Upload the variant's model version, labelled as ours; returns its resource name."""
        from google.cloud import aiplatform_v1

        env = [aiplatform_v1.EnvVar(name=k, value=v) for k, v in sorted(variant["env"].items())]
        model = aiplatform_v1.Model(
            display_name=variant["model_display_name"],
            artifact_uri=variant["artifact_uri"],
            labels=model_labels(variant, owner),
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

    def relabel(self, model: str, labels: dict[str, str]) -> None:
        """Replace a model's labels in place (``UpdateModel`` with mask ``labels``)."""
        from google.cloud import aiplatform_v1
        from google.protobuf import field_mask_pb2

        self.call(
            f"relabelling model {model}",
            self.models.update_model,
            model=aiplatform_v1.Model(name=model, labels=labels),
            update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
        )

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

        machine = aiplatform_v1.MachineSpec(machine_type=variant["machine_type"])
        if variant.get("accelerator_type"):
            machine.accelerator_type = accelerator_enum(variant["accelerator_type"])
            machine.accelerator_count = int(variant["accelerator_count"])
        resources = dedicated_resources(variant)
        resources.machine_spec = machine
        deployed = aiplatform_v1.DeployedModel(
            id=deployed_model_id_for(model),
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
                id=deployed_model_id, dedicated_resources=dedicated_resources(variant)
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
                if record.get("model"):
                    self.delete_model(record["model"])
            except VertexDeploymentError as exc:
                failed.append({**record, "error": str(exc)})
        return failed


def model_labels(variant: dict[str, Any], owner: str | None) -> dict[str, str]:
    """The variant's labels plus ours (owner and release fingerprint)."""
    ours = {RELEASE_LABEL: release_of(variant)}
    if owner is not None:
        ours[OWNER_LABEL] = owner
    return {**dict(variant.get("labels") or {}), **ours}


def dedicated_resources(variant: dict[str, Any]) -> Any:
    from google.cloud import aiplatform_v1

    low = int(variant["min_replicas"])
    targets = (
        (CPU_METRIC, "cpu_utilization_target"),
        (DUTY_CYCLE_METRIC, "accelerator_duty_cycle_target"),
    )
    specs = [
        aiplatform_v1.AutoscalingMetricSpec(metric_name=metric, target=int(variant[key]))
        for metric, key in targets
        if variant.get(key) is not None
    ]
    return aiplatform_v1.DedicatedResources(
        min_replica_count=low,
        max_replica_count=int(variant.get("max_replicas") or low),
        autoscaling_metric_specs=specs,
    )


# ---------------------------------------------------------------------------- reconciling


@dataclass
class _Run:
    """What one create/update did so far, for the rollback of a failure."""

    vertex: VertexApi
    owner: str | None
    created: list[dict[str, Any]] = field(default_factory=list)
    restore: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def rollback(self) -> list[dict[str, Any]]:
        """Undeploy and delete what this run created; redeploy what it undeployed first (a
        private endpoint's old release). Returns what could not be undone."""
        if not self.created and not self.restore:
            return []
        live = self.vertex.inventory(self.owner)
        leftovers = []
        for record in reversed(self.created):
            ids = live.deployments_of(record["model"]) if record.get("model") else []
            targets = [{**record, "deployed_model_id": i} for i in ids] or [
                {**record, "deployed_model_id": None}
            ]
            leftovers += self.vertex.retire(targets)
        for variant, record in self.restore:
            try:
                self.vertex.deploy(variant, record["model"], {"0": 100})
            except VertexDeploymentError as exc:
                leftovers.append({**record, "error": f"restoring it failed: {exc}"})
        return leftovers


@contextmanager
def _rolled_back_on_failure(run: _Run) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        try:
            leftovers = run.rollback()
        except BaseException as rollback_exc:  # the original failure stays the error
            leftovers = [{"error": f"rolling back failed: {rollback_exc}"}]
        if leftovers:
            note = (
                f"; rolling back left {leftovers} - they carry the {OWNER_LABEL} label and the "
                "next `pulumi up` adopts or removes them"
            )
            if isinstance(exc, VertexDeploymentError):
                raise VertexDeploymentError(f"{exc}{note}") from exc
            raise VertexDeploymentError(f"{type(exc).__name__}: {exc}{note}") from exc
        raise


def _records(previous: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The recorded deployments; fingerprints written before labels changed in place are
    translated, so upgrading this code redeploys nothing."""
    records = {k: dict(v) for k, v in (previous.get("deployed") or {}).items()}
    for variant in normal(previous.get("variants") or []):
        record = records.get(variant["name"])
        if record is not None and record.get("release") == legacy_release_of(variant):
            record["release"] = release_of(variant)
            record.setdefault("labels", dict(variant.get("labels") or {}))
    return records


def reconcile(props: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Bring the endpoint from ``previous`` (state outputs, ``{}`` on create) to ``props``."""
    inputs = inputs_of(props)
    owner = props.get("owner")
    private = bool(props.get("private"))
    variants = {v["name"]: v for v in inputs["variants"]}
    for variant in variants.values():  # before anything is uploaded
        if variant.get("accelerator_type"):
            accelerator_enum(variant["accelerator_type"])
    vertex = VertexApi(inputs)
    vertex.wait_until_idle()
    live = vertex.inventory(owner)
    records = _records(previous)
    pending: list[dict[str, Any]] = list(previous.get("cleanup_pending") or [])
    records, pending, spare = _adopt(live, records, pending, variants)
    split = dict(live.split)
    deployed: dict[str, dict[str, Any]] = {}
    retired: list[dict[str, Any]] = []
    run = _Run(vertex, owner)
    with _rolled_back_on_failure(run):
        for name, variant in variants.items():
            old = records.get(name)
            release = release_of(variant)
            if old and old["release"] == release and old["deployed_model_id"] in live.deployed:
                deployed[name] = _keep(vertex, variant, old, owner)
                continue
            if old:
                retired.append(old)
            model = spare.pop((name, release), None)
            if model is None:
                model = vertex.upload(variant, owner)
            run.created.append({"model": model, "deployed_model_id": None})
            if private and old and old["deployed_model_id"] in live.deployed:
                # One deployed model per private endpoint: the old one goes first.
                vertex.undeploy(old["deployed_model_id"])
                run.restore.append((variant, old))
                retired[-1] = {**old, "deployed_model_id": None}
                split = {}
            joins = 0 if sum(split.values()) == 100 else 100
            deployed_id = vertex.deploy(
                variant, model, {**split, "0": 0} if joins == 0 else {"0": 100}
            )
            run.created[-1]["deployed_model_id"] = deployed_id
            split = {**split, deployed_id: 0} if joins == 0 else {deployed_id: 100}
            live.deployed[deployed_id] = None
            deployed[name] = {
                "model": model,
                "deployed_model_id": deployed_id,
                "release": release,
                "scaling": scaling_of(variant),
                "labels": dict(variant.get("labels") or {}),
                "owner": owner,
            }
        wanted = {deployed[n]["deployed_model_id"]: int(p) for n, p in inputs["traffic"].items()}
        if {k: v for k, v in split.items() if v} != {k: v for k, v in wanted.items() if v}:
            vertex.set_split(wanted)
    retired += [record for name, record in records.items() if name not in variants]
    retired += [{"model": model, "deployed_model_id": None} for model in spare.values()]
    # Traffic has moved: the retired deployments hold none. Failures here are kept in state and
    # retried on the next update or delete, so nothing is forgotten.
    failed = vertex.retire(pending + retired)
    return {
        **inputs,
        "owner": owner,
        "private": private,
        "deployed": deployed,
        "cleanup_pending": failed,
    }


def _keep(
    vertex: VertexApi, variant: dict[str, Any], old: dict[str, Any], owner: str | None
) -> dict[str, Any]:
    """An unchanged release: rescale and relabel in place as needed."""
    scaling = scaling_of(variant)
    if old.get("scaling") != scaling:
        vertex.rescale(variant, old["deployed_model_id"])
    labels = dict(variant.get("labels") or {})
    if old.get("labels") != labels or old.get("owner") != owner:
        # Label changes stay in place; models recorded before ownership labels get them.
        vertex.relabel(old["model"], model_labels(variant, owner))
    return {**old, "scaling": scaling, "labels": labels, "owner": owner}


def _adopt(
    live: Live,
    records: dict[str, dict[str, Any]],
    pending: list[dict[str, Any]],
    variants: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], dict[tuple[str, str], str]]:
    """Owned deployments and models no record names (an interrupted run made them): adopt the
    ones a variant wants, retire the rest; models never deployed are kept as spares to reuse.
    Returns (records, pending cleanup, spares by (variant, release))."""
    recorded = {r["deployed_model_id"] for r in records.values()}
    recorded_models = {r["model"] for r in records.values()}
    pending_ids = {p.get("deployed_model_id") for p in pending}
    for deployed_id, deployed in live.deployed.items():
        if deployed_id in recorded or not live.owns(deployed.model):
            continue
        model = live.models[deployed.model.split("@")[0]]
        name = deployed.display_name
        variant = variants.get(name)
        current = records.get(name)
        release = None if variant is None else release_of(variant)
        wanted = release is not None and _label(model, RELEASE_LABEL) == release
        superseded = (
            current is None
            or current["release"] != release
            or current["deployed_model_id"] not in live.deployed
        )
        if wanted and superseded:
            assert variant is not None
            if current is not None:
                pending.append(current)  # retired once the traffic has moved
            records[name] = {
                "model": model.name,
                "deployed_model_id": deployed_id,
                "release": release_of(variant),
                "scaling": _live_scaling(deployed),
                "labels": _user_labels(model),
                "owner": live.owner,
            }
            pending = [p for p in pending if p.get("deployed_model_id") != deployed_id]
        elif deployed_id not in pending_ids:
            pending.append(
                {
                    "model": model.name,
                    "deployed_model_id": deployed_id,
                    "error": "deployed by an interrupted run",
                }
            )
    in_use = {d.model.split("@")[0] for d in live.deployed.values() if d is not None}
    in_use |= recorded_models | {p.get("model") for p in pending}
    spare: dict[tuple[str, str], str] = {}
    for name, model in live.models.items():
        if name in in_use or not live.owns(name):
            continue
        key = (str(_label(model, VARIANT_LABEL)), str(_label(model, RELEASE_LABEL)))
        if key in spare:
            pending.append({"model": name, "deployed_model_id": None})
        else:
            spare[key] = name
    return records, pending, spare


def _user_labels(model: Any) -> dict[str, str]:
    return {k: v for k, v in dict(model.labels).items() if k not in _OWN_LABELS}


def _live_scaling(deployed: Any) -> list[int | None]:
    return scaling_of(live_variant(deployed, None))


# ------------------------------------------------------------------------------ refreshing


def live_variant(deployed: Any, model: Any | None) -> dict[str, Any]:
    """A variant's inputs as the endpoint and model now describe them (console drift shows)."""
    from google.cloud import aiplatform_v1

    resources = deployed.dedicated_resources
    machine = resources.machine_spec
    targets = {s.metric_name: int(s.target) for s in resources.autoscaling_metric_specs}
    accelerator = aiplatform_v1.AcceleratorType(machine.accelerator_type).name
    variant: dict[str, Any] = {
        "name": deployed.display_name,
        "machine_type": machine.machine_type,
        "accelerator_type": None if machine.accelerator_type == 0 else accelerator,
        "accelerator_count": int(machine.accelerator_count),
        "min_replicas": int(resources.min_replica_count),
        "max_replicas": int(resources.max_replica_count),
        "cpu_utilization_target": targets.get(CPU_METRIC),
        "accelerator_duty_cycle_target": targets.get(DUTY_CYCLE_METRIC),
        "service_account": deployed.service_account or None,
    }
    if model is not None:
        container = model.container_spec
        variant.update(
            model_display_name=model.display_name,
            image=container.image_uri,
            artifact_uri=model.artifact_uri,
            env={e.name: e.value for e in container.env},
            labels=_user_labels(model),
        )
    return variant


def refresh(props: dict[str, Any]) -> dict[str, Any] | None:
    """``pulumi refresh``: the live deployments of the recorded variants, with their live image,
    machine, replicas and split (drift shows in the next diff); deployments removed by hand are
    forgotten (their models still ours to delete); owned deployments nothing records are listed
    for the next update. ``None`` when the endpoint is gone."""
    from google.api_core import exceptions

    owner = props.get("owner")
    vertex = VertexApi(inputs_of(props))
    try:
        live = vertex.inventory(owner)
    except VertexDeploymentError as exc:
        if isinstance(exc.__cause__, exceptions.NotFound):
            return None
        raise
    records = _records(props)
    pending = list(props.get("cleanup_pending") or [])
    old_variants = {v["name"]: v for v in normal(props.get("variants") or [])}
    deployed: dict[str, dict[str, Any]] = {}
    variants: list[dict[str, Any]] = []
    for name, record in records.items():
        found = live.deployed.get(record["deployed_model_id"])
        if found is None:
            gone = f"deployed model {record['deployed_model_id']} was removed outside Pulumi"
            pending.append({**record, "deployed_model_id": None, "error": gone})
            continue
        model = live.models.get(found.model.split("@")[0])
        variant = {**old_variants.get(name, {}), **live_variant(found, model)}
        variants.append(variant)
        deployed[name] = {
            **record,
            "release": release_of(variant),
            "scaling": scaling_of(variant),
            "labels": dict(variant.get("labels") or {}),
        }
    known = {r["deployed_model_id"] for r in deployed.values()}
    known |= {p.get("deployed_model_id") for p in pending}
    for deployed_id, found in live.deployed.items():
        if deployed_id not in known and live.owns(found.model):
            pending.append(
                {
                    "model": found.model.split("@")[0],
                    "deployed_model_id": deployed_id,
                    "error": "deployed by an interrupted run; the next update adopts or removes it",
                }
            )
    traffic = {name: live.split.get(r["deployed_model_id"], 0) for name, r in deployed.items()}
    return {
        **props,
        "variants": variants,
        "traffic": traffic,
        "deployed": deployed,
        "cleanup_pending": pending,
    }


# ------------------------------------------------------------------------------- deleting


def teardown(props: dict[str, Any]) -> None:
    """Take the traffic away, undeploy every deployed model of ours and delete our models,
    including owned leftovers of interrupted runs. Refuses to strand traffic of deployed models
    not managed here."""
    from google.api_core import exceptions

    owner = props.get("owner")
    vertex = VertexApi(inputs_of(props))
    records = list((props.get("deployed") or {}).values())
    records += list(props.get("cleanup_pending") or [])
    try:
        vertex.wait_until_idle()
        live = vertex.inventory(owner)
    except VertexDeploymentError as exc:
        if not isinstance(exc.__cause__, exceptions.NotFound):
            raise
        # The endpoint is gone, and its deployments with it.
        vertex.retire([{**r, "deployed_model_id": None} for r in records])
        return
    ours = {r.get("deployed_model_id") for r in records}
    for deployed_id, found in live.deployed.items():
        if deployed_id not in ours and live.owns(found.model):
            records.append({"model": found.model.split("@")[0], "deployed_model_id": deployed_id})
            ours.add(deployed_id)
    used = {d.model.split("@")[0] for i, d in live.deployed.items() if i not in ours}
    models = {r.get("model") for r in records}
    records += [
        {"model": name, "deployed_model_id": None}
        for name in live.models
        if live.owns(name) and name not in models and name not in used
    ]
    others = {k: v for k, v in live.split.items() if v and k not in ours}
    if others and sum(others.values()) != 100:
        raise VertexDeploymentError(
            f"{vertex.endpoint_name} also sends traffic to deployed models not managed "
            f"here ({sorted(others)}); give them 100% before deleting this deployment"
        )
    if any(v for k, v in live.split.items() if k in ours):
        vertex.set_split(others)
    failed = vertex.retire(records)
    if failed:
        raise VertexDeploymentError("could not remove: " + "; ".join(f["error"] for f in failed))
