"""Replay what the components declared (recorded by the Pulumi mocks) against an AWS API
implementation with boto3, in the order Pulumi would create it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.aws.endpoint_provider import SageMakerEndpointProvider
from infra.stack.mocks import Declared, RecordingMocks
from tests.infra.aws.wire import to_request

ClientFactory = Callable[[str], Any]

#: type token -> (service, operation, top-level renames, provider-only keys)
OPERATIONS: dict[str, tuple[str, str, dict[str, str], frozenset[str]]] = {
    "aws:ecr/repository:Repository": (
        "ecr",
        "CreateRepository",
        {"name": "repositoryName", "encryptionConfigurations": "encryptionConfiguration"},
        frozenset({"forceDelete"}),
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": (
        "ecr",
        "PutLifecyclePolicy",
        {"repository": "repositoryName", "policy": "lifecyclePolicyText"},
        frozenset(),
    ),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": (
        "ecr",
        "SetRepositoryPolicy",
        {"repository": "repositoryName", "policy": "policyText"},
        frozenset(),
    ),
    "aws:iam/role:Role": (
        "iam",
        "CreateRole",
        {"name": "RoleName", "assumeRolePolicy": "AssumeRolePolicyDocument"},
        frozenset(),
    ),
    "aws:iam/rolePolicy:RolePolicy": (
        "iam",
        "PutRolePolicy",
        {"name": "PolicyName", "role": "RoleName", "policy": "PolicyDocument"},
        frozenset(),
    ),
    "aws:sagemaker/model:Model": ("sagemaker", "CreateModel", {"name": "ModelName"}, frozenset()),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "sagemaker",
        "CreateEndpointConfig",
        {"name": "EndpointConfigName", "kmsKeyArn": "KmsKeyId"},
        frozenset(),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "cloudwatch",
        "PutMetricAlarm",
        {"name": "AlarmName"},
        frozenset(),
    ),
    "aws:sagemaker/endpoint:Endpoint": (
        "sagemaker",
        "CreateEndpoint",
        {"name": "EndpointName"},
        frozenset(),
    ),
    "aws:appautoscaling/target:Target": (
        "application-autoscaling",
        "RegisterScalableTarget",
        {},
        frozenset(),
    ),
    "aws:appautoscaling/policy:Policy": (
        "application-autoscaling",
        "PutScalingPolicy",
        {"name": "PolicyName"},
        frozenset(),
    ),
}
ORDER = list(OPERATIONS)
#: The endpoint's dynamic resource: replayed through its own provider.
DEPLOYMENT = "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment"


def metric_queries(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``metricQueries`` as the Terraform provider sends them (hashicorp/terraform-provider-aws
    ``internal/service/cloudwatch/metric_alarm.go``, ``expandMetricAlarmMetrics`` and
    ``expandMetricAlarmMetricsMetric``): each block is a ``MetricDataQuery``; its ``metric``
    block becomes ``MetricStat`` with the name, namespace and dimensions under ``Metric`` and
    ``period``/``stat``/``unit`` beside it."""
    out = []
    for query in queries:
        entry = {k: v for k, v in query.items() if k != "metric"}
        if query.get("metric"):
            metric = dict(query["metric"])
            entry["metricStat"] = {
                "metric": {
                    "metricName": metric.pop("metricName"),
                    "namespace": metric.pop("namespace"),
                    "dimensions": metric.pop("dimensions", {}),
                },
                **metric,
            }
        out.append(entry)
    return out


def _inputs(resource: Declared, mocks: RecordingMocks) -> dict[str, Any]:
    """Wire inputs, with the names and ids the provider would have filled in."""
    inputs = dict(resource.inputs)
    if resource.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and "metricQueries" in inputs:
        inputs["metrics"] = metric_queries(inputs.pop("metricQueries"))
    if resource.type == "aws:iam/role:Role":
        inputs.setdefault("name", resource.name)
    if resource.type == "aws:iam/rolePolicy:RolePolicy":
        (role,) = [
            r for r in mocks.of_type("aws:iam/role:Role") if f"{r.name}-id" == inputs["role"]
        ]
        inputs["role"] = role.name  # a role's id is its name
        inputs.setdefault("name", resource.name)
    return inputs


def replay(mocks: RecordingMocks, client: ClientFactory) -> list[tuple[str, str]]:
    """Send every declared AWS resource to the API; returns (operation, resource name) pairs."""
    done = []
    declared = [r for r in mocks.resources if r.type in OPERATIONS]
    unknown = {r.type for r in mocks.resources if r.type.startswith("aws:")} - set(OPERATIONS)
    assert not unknown, f"no replay for {sorted(unknown)}"
    for resource in sorted(declared, key=lambda r: ORDER.index(r.type)):
        service, operation, renames, provider_only = OPERATIONS[resource.type]
        api = client(service)
        request = to_request(
            api,
            operation,
            _inputs(resource, mocks),
            renames=renames,
            provider_only=provider_only,
        )
        method = api.meta.method_to_api_mapping
        name = next(m for m, op in method.items() if op == operation)
        getattr(api, name)(**request)
        done.append((operation, resource.name))
    for resource in mocks.of_type(DEPLOYMENT):
        # the endpoint's dynamic provider makes its own boto3 calls (AWS_ENDPOINT_URL: moto)
        SageMakerEndpointProvider().create(
            {k: v for k, v in resource.inputs.items() if v is not None}
        )
        done.append(("SageMakerDeployment", resource.name))
    return done
