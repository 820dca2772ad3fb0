"""Pulumi dynamic provider: a SageMaker endpoint's whole life cycle, with boto3.

Why not pulumi-aws's ``sagemaker.Endpoint``/``EndpointConfiguration``/``Model``? The Terraform
provider they wrap (hashicorp/terraform-provider-aws ``internal/service/sagemaker/``) gets the
life cycle of a production endpoint wrong in ways no option fixes:

- ``deployment_config.auto_rollback_configuration`` is ``ForceNew``: adding a variant (its
  alarms), or turning rollback on or off, replaces an endpoint whose name is fixed — SageMaker
  answers "Cannot create already existing endpoint".
- ``UpdateEndpoint`` is called without ``RetainAllVariantProperties``: every release resets
  each variant to its initial instance count, discarding what autoscaling chose.
- every variant field is ``ForceNew`` on the configuration: a weight change is a new
  configuration and a second fleet, though ``UpdateEndpointWeightsAndCapacities`` moves traffic
  in place.
- ``waitEndpointInService`` waits a hard-coded 60 minutes (no ``Timeouts`` block, so
  ``custom_timeouts`` do nothing), and returns success when SageMaker rolled the update back
  (issues #48997, #46663): Pulumi then deletes the old configuration and models — the ones
  still serving — and the next update fails.

So this provider owns the models, the endpoint configurations, the endpoint and the variants'
Application Auto Scaling registration (which an update must sometimes undo and redo), and
orders the calls as SageMaker's documentation prescribes:

- Models and configurations are named after a hash of their content (production weights
  excluded) and created only if absent, so reverting to an earlier release reuses its names.
  An update never deletes one; :mod:`infra.aws.garbage` removes those no endpoint uses (on
  delete, and with ``ml-endpoints gc``).
- A release: deregister the scalable targets of variants the new configuration removes or
  whose instance type changes (endpoint-scaling-update.html); ``UpdateEndpoint`` with the
  deployment configuration, ``RetainAllVariantProperties`` and ``DesiredWeight`` excluded from
  retention (the new configuration carries the desired weights; counts stay as autoscaling set
  them); wait — ``RollingBack`` counts as in progress, the deadline comes from the rollout, not
  60 minutes — and if the endpoint ends on any other configuration, restore the autoscaling and
  fail with SageMaker's reason. Nothing that serves is touched.
- A weight-only change: one ``UpdateEndpointWeightsAndCapacities`` with weights only.
- A deployment-configuration-only change (rollback alarms, intervals): no call at all;
  SageMaker takes the deployment configuration with each ``UpdateEndpoint``.
- Replacement only when the endpoint's name or region changes.
- A ``Failed`` endpoint ("DeleteEndpoint is the only operation that can be performed on a failed
  endpoint", DescribeEndpoint ``EndpointStatus``) is deleted and created again, unless the
  inputs say ``failed_endpoint: keep`` (production, :attr:`~infra.aws.config.
  SageMakerEndpointArgs.recreates_failed_endpoint`): then the run stops before any call that
  changes something and says what to do. Deleting is what loses the endpoint's
  ``FailureReason``, frees its name (every client's requests fail until a new endpoint is
  ``InService``, a whole provisioning later) and cannot be undone, so in production a person
  decides it after reading the reason.

Pulumi pickles the provider with the program, so it imports boto3 inside functions and keeps no
state. Credentials come from boto3's usual chain at run time; ``AWS_ENDPOINT_URL_SAGEMAKER`` /
``AWS_ENDPOINT_URL`` point it elsewhere (the tests' local fakes).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from infra.aws.naming import content_name

#: Tag on every model and configuration this provider creates: what ``gc`` may consider.
OWNER_TAG = "ml-endpoints:endpoint"
#: Application Auto Scaling's dimension and metric for a variant's instance count.
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
#: Statuses after which SageMaker does nothing more on its own (DescribeEndpoint EndpointStatus).
TERMINAL = frozenset({"InService", "Failed", "OutOfService", "UpdateRollbackFailed"})
#: Normalised weights closer than this are equal.
WEIGHT_TOLERANCE = 1e-6

#: Inputs whose change means another endpoint (the only replacement).
REPLACE_KEYS = ("endpoint_name", "region")
INPUT_KEYS = (
    *REPLACE_KEYS,
    "profile",
    "models",
    "config",
    "weights",
    "deployment",
    "autoscaling",
    "tags",
    "timeouts",
    "poll_seconds",
    "secret_env",
    "failed_endpoint",
)
#: ``failed_endpoint`` value: stop at a ``Failed`` endpoint instead of recreating it.
KEEP_FAILED = "keep"
#: The stack key that lets a production stack recreate a ``Failed`` endpoint.
RECREATE_FAILED_KEY = "ml-endpoints:sagemaker.recreate_failed_endpoint"


class EndpointDeploymentError(RuntimeError):
    """A SageMaker call or wait failed; the message names the endpoint and the step."""


class EndpointRolledBack(EndpointDeploymentError):
    """SageMaker rolled an update back: the endpoint serves its previous configuration."""


class EndpointStillBusy(EndpointDeploymentError):
    """The wait ran out while SageMaker carries on: the outcome is not known yet."""


class Clock:
    """Time as the waits see it (tests substitute one that does not sleep)."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


#: The clock every wait uses.
CLOCK = Clock()


def normal(value: Any) -> Any:
    """Pulumi hands numbers over as floats: whole numbers become ints (boto3 validates them)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    return value


def inputs_of(props: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs this provider acts on, normalised (state also holds outputs)."""
    return {key: normal(props.get(key)) for key in INPUT_KEYS}


def resource_id(endpoint: str, variant: str) -> str:
    """Application Auto Scaling's id of a variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


@dataclass(frozen=True)
class Desired:
    """The names and complete requests one set of inputs asks for."""

    endpoint: str
    model_names: dict[str, str]
    models: dict[str, dict[str, Any]]
    """Model name -> CreateModel request (without name and tags)."""
    config_name: str
    config: dict[str, Any]
    """CreateEndpointConfig request (without name and tags), desired weights included."""
    weights: dict[str, float]
    instance_types: dict[str, str | None]


def desired(props: Mapping[str, Any]) -> Desired:
    """Content names and requests for ``props`` (pure: the component uses it for its outputs).

    A model's name hashes its request; the configuration's name hashes its request with the
    model names filled in and the production weights left out, so a weight change keeps it.
    """
    inputs = inputs_of(props)
    endpoint = str(inputs["endpoint_name"])
    secret_env = inputs.get("secret_env") or {}
    model_names = {
        variant: content_name(f"{endpoint}-{variant}", _sealed(request, secret_env.get(variant)))
        for variant, request in inputs["models"].items()
    }
    config = dict(inputs["config"])
    weights = {v: float(w) for v, w in inputs["weights"].items()}

    def filled(variants: list[dict[str, Any]], *, weighted: bool) -> list[dict[str, Any]]:
        out = []
        for variant in variants:
            entry = {**variant, "ModelName": model_names[variant["VariantName"]]}
            if weighted:
                entry["InitialVariantWeight"] = weights[variant["VariantName"]]
            out.append(entry)
        return out

    config["ProductionVariants"] = filled(config["ProductionVariants"], weighted=True)
    if config.get("ShadowProductionVariants"):
        config["ShadowProductionVariants"] = filled(
            config["ShadowProductionVariants"], weighted=False
        )
    unweighted = {
        **config,
        "ProductionVariants": [
            {k: v for k, v in variant.items() if k != "InitialVariantWeight"}
            for variant in config["ProductionVariants"]
        ],
    }
    return Desired(
        endpoint=endpoint,
        model_names=model_names,
        models={model_names[v]: request for v, request in inputs["models"].items()},
        config_name=content_name(endpoint, unweighted),
        config=config,
        weights=weights,
        instance_types={
            v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]
        },
    )


def _sealed(request: Mapping[str, Any], secret: Mapping[str, str] | None) -> Mapping[str, Any]:
    """What a model's name hashes: its secret environment values (``secret_env``: variable ->
    fingerprint of the ciphertext, :mod:`infra.secret_values`) by their fingerprints, so a
    name cannot be used to test guesses of a secret."""
    if not secret:
        return request
    container = request["PrimaryContainer"]
    env = {**container.get("Environment", {}), **{k: f"[secret {f}]" for k, f in secret.items()}}
    return {**request, "PrimaryContainer": {**container, "Environment": env}}


def shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights normalised to shares of traffic (all zero stays all zero)."""
    total = sum(weights.values())
    return {name: (weight / total if total else 0.0) for name, weight in weights.items()}


def weights_differ(live: Mapping[str, float], wanted: Mapping[str, float]) -> bool:
    """Different variants, or a share further apart than :data:`WEIGHT_TOLERANCE`."""
    if set(live) != set(wanted):
        return True
    a, b = shares(live), shares(wanted)
    return any(not math.isclose(a[v], b[v], abs_tol=WEIGHT_TOLERANCE) for v in a)


@functools.cache
def _session(region: str, profile: str | None) -> Any:
    """One boto3 session per region and profile: it caches the (large) service models, so
    clients are cheap to make."""
    import boto3

    return boto3.Session(region_name=region, profile_name=profile)


class _Endpoint:
    """boto3 clients for one endpoint plus the waits, with errors that name the step."""

    def __init__(self, inputs: Mapping[str, Any]) -> None:
        session = _session(str(inputs["region"]), inputs.get("profile"))
        self.name = str(inputs["endpoint_name"])
        self.region = str(inputs["region"])
        self.sagemaker = session.client("sagemaker")
        self.autoscaling = session.client("application-autoscaling")
        self.poll = float(inputs.get("poll_seconds") or 30)
        timeouts = inputs.get("timeouts") or {}
        self.timeouts = {k: float(v) for k, v in timeouts.items()}
        self.tags = [{"Key": k, "Value": v} for k, v in sorted((inputs.get("tags") or {}).items())]

    # -- calls --------------------------------------------------------------------------------
    def call(self, what: str, function: Any, **kwargs: Any) -> Any:
        """One API call; a failure becomes an EndpointDeploymentError naming ``what``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise EndpointDeploymentError(
                f"{what}: {error.get('Code', 'Error')}: {error.get('Message', exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise EndpointDeploymentError(f"{what}: {exc}") from exc

    def describe(self) -> dict[str, Any] | None:
        """DescribeEndpoint, or None when SageMaker does not know the endpoint."""
        from botocore.exceptions import ClientError

        try:
            return dict(self.sagemaker.describe_endpoint(EndpointName=self.name))
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            if "Could not find endpoint" in message:
                return None
            raise EndpointDeploymentError(f"describing endpoint {self.name}: {message}") from exc

    def exists(self, describe: Any, **kwargs: Any) -> bool:
        """Whether a model or configuration exists ("Could not find ..." means it does not)."""
        from botocore.exceptions import ClientError

        try:
            describe(**kwargs)
        except ClientError as exc:
            if "Could not find" in exc.response.get("Error", {}).get("Message", ""):
                return False
            raise
        return True

    def ensure_model(self, name: str, request: Mapping[str, Any]) -> bool:
        """Create the model unless it exists; True when created."""
        if self.exists(self.sagemaker.describe_model, ModelName=name):
            return False
        tags = [*self.tags, {"Key": OWNER_TAG, "Value": self.name}]
        self.call(
            f"creating model {name}",
            self.sagemaker.create_model,
            ModelName=name,
            Tags=tags,
            **request,
        )
        return True

    def ensure_config(self, name: str, request: Mapping[str, Any]) -> bool:
        """Create the endpoint configuration unless it exists; True when created."""
        if self.exists(self.sagemaker.describe_endpoint_config, EndpointConfigName=name):
            return False
        tags = [*self.tags, {"Key": OWNER_TAG, "Value": self.name}]
        self.call(
            f"creating endpoint configuration {name}",
            self.sagemaker.create_endpoint_config,
            EndpointConfigName=name,
            Tags=tags,
            **request,
        )
        return True

    def wait(self, what: str, timeout: float) -> dict[str, Any]:
        """Describe until a terminal status (``RollingBack`` and ``SystemUpdating`` included in
        the wait) or ``timeout`` seconds; returns the last description."""
        deadline = CLOCK.now() + timeout
        while True:
            live = self.describe()
            if live is None:
                raise EndpointDeploymentError(f"{what}: endpoint {self.name} disappeared")
            if live["EndpointStatus"] in TERMINAL:
                return live
            if CLOCK.now() >= deadline:
                raise EndpointStillBusy(
                    f"{what}: endpoint {self.name} is still {live['EndpointStatus']} after "
                    f"{timeout:.0f} s; SageMaker carries on without us: check it, then run "
                    "`pulumi refresh` and `pulumi up`"
                )
            CLOCK.sleep(self.poll)

    def wait_gone(self, timeout: float) -> None:
        deadline = CLOCK.now() + timeout
        while self.describe() is not None:
            if CLOCK.now() >= deadline:
                raise EndpointDeploymentError(
                    f"deleting endpoint {self.name}: still there after {timeout:.0f} s"
                )
            CLOCK.sleep(self.poll)

    # -- autoscaling --------------------------------------------------------------------------
    def registered(self, variants: list[str]) -> set[str]:
        """The variants among ``variants`` registered as scalable targets."""
        if not variants:
            return set()
        found = self.call(
            f"reading the autoscaling of {self.name}",
            self.autoscaling.describe_scalable_targets,
            ServiceNamespace="sagemaker",
            ResourceIds=[resource_id(self.name, v) for v in variants],
            ScalableDimension=SCALABLE_DIMENSION,
        )["ScalableTargets"]
        return {t["ResourceId"].rsplit("/", 1)[1] for t in found}

    def deregister(self, variants: set[str]) -> None:
        """Deregister (which also deletes their scaling policies)."""
        for variant in sorted(variants):
            self.call(
                f"deregistering variant {variant!r} of {self.name} from autoscaling",
                self.autoscaling.deregister_scalable_target,
                ServiceNamespace="sagemaker",
                ResourceId=resource_id(self.name, variant),
                ScalableDimension=SCALABLE_DIMENSION,
            )

    def register(self, scaling: Mapping[str, Mapping[str, Any]]) -> None:
        """Register each variant and put its target-tracking policy (both idempotent)."""
        for variant, spec in sorted(scaling.items()):
            target = resource_id(self.name, variant)
            self.call(
                f"registering variant {variant!r} of {self.name} for autoscaling",
                self.autoscaling.register_scalable_target,
                ServiceNamespace="sagemaker",
                ResourceId=target,
                ScalableDimension=SCALABLE_DIMENSION,
                MinCapacity=int(spec["min_instances"]),
                MaxCapacity=int(spec["max_instances"]),
            )
            self.call(
                f"putting the scaling policy of variant {variant!r} of {self.name}",
                self.autoscaling.put_scaling_policy,
                PolicyName=f"{variant}-invocations-per-instance",
                ServiceNamespace="sagemaker",
                ResourceId=target,
                ScalableDimension=SCALABLE_DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": float(spec["target_invocations_per_instance"]),
                    "PredefinedMetricSpecification": {"PredefinedMetricType": SCALING_METRIC},
                    "ScaleInCooldown": int(spec["scale_in_cooldown_s"]),
                    "ScaleOutCooldown": int(spec["scale_out_cooldown_s"]),
                    "DisableScaleIn": bool(spec["disable_scale_in"]),
                },
            )


def live_weights(live: Mapping[str, Any]) -> dict[str, float]:
    """Production variant -> current weight, from a DescribeEndpoint answer."""
    return {
        v["VariantName"]: float(v.get("CurrentWeight", 0.0))
        for v in live.get("ProductionVariants", [])
    }


def _live_instance_types(api: _Endpoint, config_name: str) -> dict[str, str | None] | None:
    """Variant -> instance type of a configuration, or None if it no longer exists."""
    from botocore.exceptions import ClientError

    try:
        config = api.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError:
        return None
    return {v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]}


def _rolled_back(api: _Endpoint, live: Mapping[str, Any], wanted: str) -> str:
    reason = live.get("FailureReason") or (
        "SageMaker gave no FailureReason; look at the rollback alarms and the endpoint's "
        "CloudWatch logs"
    )
    if live["EndpointStatus"] == "UpdateRollbackFailed":
        what = (
            f"SageMaker could neither complete the update to configuration {wanted} nor roll it "
            "back; the endpoint is UpdateRollbackFailed, serving a mix of "
            f"{live['EndpointConfigName']} and {wanted}"
        )
    else:
        what = (
            f"SageMaker rolled the update to configuration {wanted} back; the endpoint is "
            f"{live['EndpointStatus']} on configuration {live['EndpointConfigName']}"
        )
    return (
        f"endpoint {api.name}: {what}: {reason}. Nothing that serves was deleted; the new "
        "configuration and models are kept for inspection (`ml-endpoints gc` removes unused "
        "ones)."
    )


def _kept_failed(api: _Endpoint, live: Mapping[str, Any]) -> str:
    """Why a ``Failed`` endpoint is left alone, and the two ways on."""
    where = f"--endpoint-name {api.name} --region {api.region}"
    reason = live.get("FailureReason") or "SageMaker gave no FailureReason"
    return (
        f"endpoint {api.name} is Failed: {reason}. SageMaker lets a Failed endpoint only be "
        "deleted, and this stack keeps it (production: ml-endpoints:policy.production; or "
        f"{RECREATE_FAILED_KEY}: false): pulumi up deleted nothing and changed nothing. "
        "Read why it failed (aws sagemaker "
        f"describe-endpoint {where} --query FailureReason) and fix the cause; then either "
        f"delete it yourself (aws sagemaker delete-endpoint {where}) and run pulumi up again, "
        f"which creates it anew, or set {RECREATE_FAILED_KEY}: true in the stack file to let "
        "pulumi up delete and recreate it. Once it is deleted, the endpoint name answers no "
        "requests until the new endpoint is InService."
    )


def _create_endpoint(api: _Endpoint, plan: Desired, inputs: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"EndpointName": api.name, "EndpointConfigName": plan.config_name}
    if inputs.get("deployment"):
        request["DeploymentConfig"] = inputs["deployment"]
    if api.tags:
        request["Tags"] = api.tags
    api.call(f"creating endpoint {api.name}", api.sagemaker.create_endpoint, **request)
    live = api.wait(f"creating endpoint {api.name}", api.timeouts.get("create", 3600))
    if live["EndpointStatus"] != "InService":
        raise EndpointDeploymentError(
            f"creating endpoint {api.name}: it is {live['EndpointStatus']}: "
            f"{live.get('FailureReason') or 'no reason given'}"
        )
    return live


def _release(
    api: _Endpoint,
    plan: Desired,
    inputs: Mapping[str, Any],
    live: Mapping[str, Any],
    previous: Mapping[str, Any],
) -> dict[str, Any]:
    """UpdateEndpoint to ``plan.config_name``, undoing and redoing autoscaling around it."""
    current = str(live["EndpointConfigName"])
    old_types = _live_instance_types(api, current) or {}
    registered = api.registered([v["VariantName"] for v in live.get("ProductionVariants", [])])
    blocking = {
        v
        for v in registered
        if v not in plan.instance_types or plan.instance_types[v] != old_types.get(v)
    }
    api.deregister(blocking)
    request: dict[str, Any] = {
        "EndpointName": api.name,
        "EndpointConfigName": plan.config_name,
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}],
    }
    if inputs.get("deployment"):
        request["DeploymentConfig"] = inputs["deployment"]
    what = f"updating endpoint {api.name} to configuration {plan.config_name}"
    try:
        api.call(what, api.sagemaker.update_endpoint, **request)
        after = api.wait(what, api.timeouts.get("update", 3600))
    except EndpointStillBusy as busy:
        # Still deploying: registering the old variants now could leave a scalable target on a
        # variant the update removes. The next run waits the update out and registers what the
        # stack wants (the state keeps the old inputs, so it retries).
        held = f" Autoscaling of {sorted(blocking)} stays off until then." if blocking else ""
        raise EndpointStillBusy(f"{busy}.{held}") from busy
    except EndpointDeploymentError:
        _restore(api, blocking, previous)
        raise
    if after["EndpointStatus"] != "InService" or after["EndpointConfigName"] != plan.config_name:
        _restore(api, blocking, previous)
        raise EndpointRolledBack(_rolled_back(api, after, plan.config_name))
    return after


def _restore(api: _Endpoint, deregistered: set[str], previous: Mapping[str, Any]) -> None:
    """Register again what a failed release deregistered (the old variants serve again)."""
    before = (previous.get("autoscaling") or {}) if previous else {}
    api.register({v: spec for v, spec in before.items() if v in deregistered})


def _shift_weights(api: _Endpoint, plan: Desired, live: Mapping[str, Any]) -> dict[str, Any]:
    """Move traffic in place when the live weights differ from the wanted ones."""
    if not weights_differ(live_weights(live), plan.weights):
        return dict(live)
    what = f"setting the weights of {api.name} to {plan.weights}"
    api.call(
        what,
        api.sagemaker.update_endpoint_weights_and_capacities,
        EndpointName=api.name,
        DesiredWeightsAndCapacities=[
            {"VariantName": v, "DesiredWeight": w} for v, w in sorted(plan.weights.items())
        ],
    )
    after = api.wait(what, api.timeouts.get("update", 3600))
    if after["EndpointStatus"] != "InService" or weights_differ(live_weights(after), plan.weights):
        raise EndpointRolledBack(
            f"{what}: SageMaker left the endpoint {after['EndpointStatus']} with weights "
            f"{live_weights(after)}: {after.get('FailureReason') or 'no reason given'}"
        )
    return after


def _reconcile(props: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """Bring the endpoint from ``previous`` (state, ``{}`` on create) to ``props``."""
    inputs = inputs_of(props)
    api = _Endpoint(inputs)
    plan = desired(inputs)
    live = api.describe()
    if live is not None and live["EndpointStatus"] not in TERMINAL:
        live = api.wait(f"waiting for {api.name} to settle", api.timeouts.get("update", 3600))
    if live is not None and live["EndpointStatus"] == "Failed":
        if inputs.get("failed_endpoint") == KEEP_FAILED:
            raise EndpointDeploymentError(_kept_failed(api, live))
        # A failed endpoint can only be deleted (DescribeEndpoint EndpointStatus): start over.
        api.call(
            f"deleting failed endpoint {api.name}",
            api.sagemaker.delete_endpoint,
            EndpointName=api.name,
        )
        api.wait_gone(api.timeouts.get("delete", 1800))
        live = None
    for name, request in plan.models.items():
        api.ensure_model(name, request)
    api.ensure_config(plan.config_name, plan.config)
    if live is None:
        live = _create_endpoint(api, plan, inputs)
    elif live["EndpointConfigName"] != plan.config_name:
        live = _release(api, plan, inputs, live, previous)
    live = _shift_weights(api, plan, live)
    scaling: dict[str, Any] = inputs.get("autoscaling") or {}
    names = [v["VariantName"] for v in live.get("ProductionVariants", [])]
    api.deregister(api.registered(names) - set(scaling))
    api.register(scaling)
    return {
        **inputs,
        "endpoint_arn": live["EndpointArn"],
        "endpoint_config_name": live["EndpointConfigName"],
        "model_names": plan.model_names,
        "live_weights": live_weights(live),
    }


class SageMakerEndpointProvider(ResourceProvider):
    """Create / diff / update / read / delete for
    :class:`infra.aws.sagemaker.SageMakerDeployment` (see the module docstring)."""

    serialize_as_secret_always = False  # no secrets are captured: keep the state readable

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _reconcile(props, {})
        return CreateResult(id_=str(outs["endpoint_name"]), outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = inputs_of(olds), inputs_of(news)
        changed = [key for key in INPUT_KEYS if old[key] != new[key]]
        live = olds.get("live_weights")
        drifted = live is not None and weights_differ(live, desired(new).weights)
        stale = olds.get("endpoint_config_name") not in (None, desired(new).config_name)
        return DiffResult(
            changes=bool(changed or drifted or stale),
            replaces=[key for key in REPLACE_KEYS if old[key] != new[key]],
            stables=[],
            delete_before_replace=False,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_reconcile(news, olds))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """``pulumi refresh``: the live configuration and weights, so drift shows in the next
        diff (and the next update puts them back)."""
        api = _Endpoint(inputs_of(props))
        live = api.describe()
        if live is None:
            return ReadResult(id_=None, outs={})
        outs = {
            **props,
            "endpoint_arn": live["EndpointArn"],
            "endpoint_config_name": live["EndpointConfigName"],
            "live_weights": live_weights(live),
        }
        return ReadResult(id_=id_, outs=outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from infra.aws.garbage import collect, find_garbage

        api = _Endpoint(inputs_of(props))
        live = api.describe()
        if live is not None:
            api.deregister(
                api.registered([v["VariantName"] for v in live.get("ProductionVariants", [])])
            )
            api.call(
                f"deleting endpoint {api.name}",
                api.sagemaker.delete_endpoint,
                EndpointName=api.name,
            )
            api.wait_gone(api.timeouts.get("delete", 1800))
        collect(api.sagemaker, find_garbage(api.sagemaker, api.name, min_age_s=0))
