"""``SageMakerEndpoint``: an execution role, alarms, and the endpoint with its models,
configurations and autoscaling, owned by a dynamic provider that updates it safely
(:mod:`infra.aws.endpoint_provider` says why pulumi-aws's resources cannot)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.alarms import create_rollback_alarms, create_signal_alarms, rollback_alarm_names
from infra.aws.config import ECR_IMAGE, SageMakerEndpointArgs, VariantArgs
from infra.aws.deployment import deployment_request, timeouts_s
from infra.aws.ecr import EcrRepository
from infra.aws.endpoint_provider import KEEP_FAILED, SageMakerEndpointProvider, desired
from infra.aws.iam import ExecutionGrants, create_execution_role
from infra.secret_values import fingerprints, has_secret, to_input
from infra.validation import ConfigError, validate
from serving import contract


def capture_prefix(args: SageMakerEndpointArgs) -> str | None:
    """Where this endpoint's captured records land (``.../ENDPOINT``), or None."""
    capture = args.data_capture
    if not capture.enabled or capture.destination_s3_uri is None:
        return None
    return f"{capture.destination_s3_uri.rstrip('/')}/{args.endpoint_name}"


def _variant_request(variant: VariantArgs, *, shadow: bool = False) -> dict[str, Any]:
    """One ``ProductionVariants`` entry of CreateEndpointConfig (API shape; the provider fills
    in ``ModelName``, and for production variants the weight, which is not part of the
    configuration's content name)."""
    entry: dict[str, Any] = {"VariantName": variant.name}
    if shadow:
        # InitialVariantWeight is a Float in SageMaker's API: the percent copied to the shadow.
        entry["InitialVariantWeight"] = float(variant.weight)
    if variant.serverless is not None:
        serverless: dict[str, Any] = {
            "MemorySizeInMB": variant.serverless.memory_mb,
            "MaxConcurrency": variant.serverless.max_concurrency,
        }
        if variant.serverless.provisioned_concurrency is not None:
            serverless["ProvisionedConcurrency"] = variant.serverless.provisioned_concurrency
        entry["ServerlessConfig"] = serverless
    else:
        entry["InstanceType"] = variant.instance_type
        entry["InitialInstanceCount"] = variant.instance_count
    optional = {
        "VolumeSizeInGB": variant.volume_size_gb,
        "ContainerStartupHealthCheckTimeoutInSeconds": (
            variant.container_startup_health_check_timeout_s
        ),
        "ModelDataDownloadTimeoutInSeconds": variant.model_data_download_timeout_s,
    }
    entry.update({k: v for k, v in optional.items() if v is not None})
    return entry


def _data_capture_request(args: SageMakerEndpointArgs) -> dict[str, Any] | None:
    capture = args.data_capture
    if not capture.enabled:
        return None
    modes = [("Input", capture.capture_input), ("Output", capture.capture_output)]
    config: dict[str, Any] = {
        "EnableCapture": True,
        "DestinationS3Uri": capture.destination_s3_uri,
        "InitialSamplingPercentage": capture.sampling_percentage,
        "CaptureOptions": [{"CaptureMode": mode} for mode, on in modes if on],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": list(capture.json_content_types),
            "CsvContentTypes": list(capture.csv_content_types),
        },
    }
    if capture.kms_key_arn is not None:
        config["KmsKeyId"] = capture.kms_key_arn
    return config


def config_request(args: SageMakerEndpointArgs) -> dict[str, Any]:
    """CreateEndpointConfig without name, model names and production weights."""
    request: dict[str, Any] = {
        "ProductionVariants": [_variant_request(v) for v in args.variants],
    }
    if args.shadow_variant is not None:
        request["ShadowProductionVariants"] = [_variant_request(args.shadow_variant, shadow=True)]
    capture = _data_capture_request(args)
    if capture is not None:
        request["DataCaptureConfig"] = capture
    if args.kms_key_arn is not None:
        request["KmsKeyId"] = args.kms_key_arn
    return request


class SageMakerDeployment(
    pulumi.dynamic.Resource, module="ml-endpoints/aws", name="SageMakerDeployment"
):
    """The endpoint, its models, configurations and autoscaling (see
    :mod:`infra.aws.endpoint_provider`)."""

    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_names: pulumi.Output[dict[str, str]]
    live_weights: pulumi.Output[dict[str, float]]

    def __init__(
        self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        outputs = ("endpoint_arn", "endpoint_config_name", "model_names", "live_weights")
        super().__init__(
            SageMakerEndpointProvider(), name, {**props, **dict.fromkeys(outputs)}, opts
        )


class SageMakerEndpoint(pulumi.ComponentResource):
    """A SageMaker real-time endpoint with weighted (or serverless, or shadow) variants.

    Declares, as children: the execution role and its least-privilege policy; per production
    variant, alarms on SageMaker's 5XX errors and model latency and on the container's own
    signals (5xx ratio, p99 latency, drift: EMF lines the container writes on stdout, because
    the model's environment names the endpoint and ``metrics_namespace``), of which
    ``alarms.rollback_on`` choose those that roll a blue/green update back; and a
    :class:`SageMakerDeployment` — the endpoint, one model per variant, the endpoint
    configuration and the variants' autoscaling, kept by :mod:`infra.aws.endpoint_provider`.

    Updates: a release (new model, image, instance type, capture...) is one blue/green
    ``UpdateEndpoint`` that keeps the instance counts autoscaling chose; a weight change moves
    traffic in place; guardrail changes (rollback alarms, intervals) apply to the next release.
    A rollback by SageMaker fails ``pulumi up`` with its reason; nothing that serves is deleted
    (``ml-endpoints gc`` removes unused configurations and models). Only a new endpoint name
    replaces the endpoint, which ``protect`` (production) refuses. A ``Failed`` endpoint is
    recreated, except in production (``recreate_failed_endpoint``), where ``pulumi up`` stops
    with SageMaker's reason and what to do.

    Outputs: ``endpoint_name``, ``endpoint_arn``, ``endpoint_config_name``, ``variant_weights``
    (production variant -> percent of requests), ``role_arn``, ``capture_s3_uri``.
    """

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    variant_weights: pulumi.Output[dict[str, int]]
    role_arn: pulumi.Output[str]
    capture_s3_uri: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        args: SageMakerEndpointArgs | Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
        *,
        repository: EcrRepository | None = None,
        config_key: str = "sagemaker",
    ) -> None:
        if not isinstance(args, SageMakerEndpointArgs):
            args = validate(SageMakerEndpointArgs, args, config_key)
        _check_repository(args, repository, config_key)
        super().__init__("ml-endpoints:aws:SageMakerEndpoint", resource_name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke)
        region = aws.get_region_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)

        names = rollback_alarm_names(args.endpoint_name, args.variants, args.alarms)
        images = {v.name: _image(v, repository) for v in args.all_variants}
        grants = pulumi.Output.all(
            partition=partition.partition,
            region=region.region,
            account=identity.account_id,
            repository_arn=repository.arn if repository is not None else None,
            repository_key=repository.kms_key_arn if repository is not None else None,
        ).apply(lambda env: _grants(args, env, names))
        execution = create_execution_role(
            f"{resource_name}-execution", grants, tags=args.tags, parent=self
        )
        alarms = [
            *create_rollback_alarms(
                resource_name, args.endpoint_name, args.variants, args.alarms, self
            ),
            *create_signal_alarms(
                resource_name,
                args.endpoint_name,
                args.variants,
                args.metrics_namespace,
                args.alarms,
                self,
            ),
        ]
        deployment = args.deployment
        props: dict[str, Any] = {
            "endpoint_name": args.endpoint_name,
            "region": region.region,
            "profile": pulumi.Config("aws").get("profile"),
            "models": {
                v.name: _model_request(args, v, images[v.name], execution.role.arn)
                for v in args.all_variants
            },
            "config": config_request(args),
            "weights": {v.name: float(v.weight) for v in args.variants},
            "deployment": deployment_request(deployment, args.variants, names),
            "autoscaling": {
                v.name: v.autoscaling.model_dump()
                for v in args.variants
                if v.autoscaling is not None
            },
            "tags": args.tags,
            "timeouts": timeouts_s(deployment, args.all_variants),
            "poll_seconds": POLL_SECONDS,
        }
        secret_env = {
            v.name: fingerprints(v.model.environment)
            for v in args.all_variants
            if has_secret(v.model.environment)
        }
        if secret_env:  # the content names hash these instead of the secret values
            props["secret_env"] = secret_env
        if not args.recreates_failed_endpoint:  # absent otherwise: older states lack the key
            props["failed_endpoint"] = KEEP_FAILED
        endpoint = SageMakerDeployment(
            resource_name,
            props,
            pulumi.ResourceOptions(
                parent=self, depends_on=[*alarms, execution.policy], protect=args.protect
            ),
        )

        self.endpoint_name = pulumi.Output.from_input(args.endpoint_name)
        self.endpoint_arn = endpoint.endpoint_arn
        # A content name hashes fingerprints, never a secret value: it need not be secret.
        self.endpoint_config_name = pulumi.Output.unsecret(
            pulumi.Output.from_input(props).apply(lambda resolved: desired(resolved).config_name)
        )
        self.variant_weights = pulumi.Output.from_input({v.name: v.weight for v in args.variants})
        self.role_arn = execution.role.arn
        self.capture_s3_uri = pulumi.Output.from_input(capture_prefix(args))
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "variant_weights": self.variant_weights,
                "role_arn": self.role_arn,
                "capture_s3_uri": self.capture_s3_uri,
            }
        )


#: How often the provider asks SageMaker how an update is going.
POLL_SECONDS = 30


def _model_request(
    args: SageMakerEndpointArgs,
    variant: VariantArgs,
    image: pulumi.Output[str],
    role_arn: pulumi.Output[str],
) -> dict[str, Any]:
    """CreateModel (API shape, without name and tags) for one variant.

    The environment names the model, the variant and the endpoint: SageMaker sets no variable
    naming the endpoint, and the container's CloudWatch signals (EMF lines on stdout, which
    SageMaker ships to CloudWatch Logs) carry ``EndpointName`` and ``VariantName`` dimensions
    in ``metrics_namespace``, where the signal alarms look for them.
    """
    spec = variant.model
    request: dict[str, Any] = {
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": spec.model_data_url,
            "Environment": {
                **to_input(spec.environment),
                contract.MODEL_NAME_ENV: spec.model_name,
                contract.MODEL_VERSION_ENV: spec.model_version,
                contract.VARIANT_ENV: variant.name,
                contract.SAGEMAKER_ENDPOINT_ENV: args.endpoint_name,
                contract.SIGNALS_NAMESPACE_ENV: args.metrics_namespace,
            },
        },
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": spec.network_isolation,
    }
    if spec.vpc is not None:
        request["VpcConfig"] = {
            "Subnets": list(spec.vpc.subnet_ids),
            "SecurityGroupIds": list(spec.vpc.security_group_ids),
        }
    return request


def _check_repository(
    args: SageMakerEndpointArgs, repository: EcrRepository | None, config_key: str
) -> None:
    if repository is not None:
        return
    for index, variant in enumerate(args.all_variants):
        if variant.model.image_tag is not None:
            where = f"variants[{index}]" if index < len(args.variants) else "shadow_variant"
            raise ConfigError(
                f"{config_key}.{where}.model.image_tag",
                "needs the component's ECR repository (repository=...); or give model.image",
                variant.model.image_tag,
            )


def _image(variant: VariantArgs, repository: EcrRepository | None) -> pulumi.Output[str]:
    spec = variant.model
    if spec.image is not None:
        return pulumi.Output.from_input(spec.image)
    assert repository is not None  # checked by _check_repository
    tag = spec.image_tag
    return repository.repository_url.apply(lambda url: f"{url}:{tag}")


def _grants(args: SageMakerEndpointArgs, env: dict[str, Any], alarms: list[str]) -> ExecutionGrants:
    partition, region, account = env["partition"], env["region"], env["account"]
    repositories = {env["repository_arn"]} if env["repository_arn"] else set()
    for variant in args.all_variants:
        match = ECR_IMAGE.match(variant.model.image or "")
        if match is not None:
            repositories.add(
                f"arn:{partition}:ecr:{match['region']}:{match['account']}:"
                f"repository/{match['repository']}"
            )
    vpcs = [v.model.vpc for v in args.all_variants if v.model.vpc is not None]
    capture_key = args.data_capture.kms_key_arn if args.data_capture.enabled else None
    return ExecutionGrants(
        partition=partition,
        region=region,
        account_id=account,
        endpoint_name=args.endpoint_name,
        model_data_urls=tuple(v.model.model_data_url for v in args.all_variants),
        repository_arns=tuple(sorted(repositories)),
        capture_s3_uri=args.data_capture.destination_s3_uri if args.data_capture.enabled else None,
        model_kms_key_arns=(args.model_data_kms_key_arn,) if args.model_data_kms_key_arn else (),
        repository_kms_key_arns=(env["repository_key"],) if env["repository_key"] else (),
        capture_kms_key_arns=(capture_key,) if capture_key else (),
        alarm_names=tuple(alarms) if args.deployment.auto_rollback else (),
        subnet_ids=tuple(s for vpc in vpcs for s in vpc.subnet_ids),
        security_group_ids=tuple(g for vpc in vpcs for g in vpc.security_group_ids),
    )
