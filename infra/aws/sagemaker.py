"""``SageMakerEndpoint``: models, an endpoint configuration and the endpoint, updated safely."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.alarms import alarm_names, create_rollback_alarms
from infra.aws.autoscaling import create_variant_scaling
from infra.aws.config import ECR_IMAGE, SageMakerEndpointArgs, VariantArgs
from infra.aws.deployment import custom_timeouts, deployment_config
from infra.aws.ecr import EcrRepository
from infra.aws.iam import ExecutionGrants, ExecutionRole, create_execution_role
from infra.aws.naming import content_name
from infra.validation import ConfigError, validate
from serving import contract


def capture_prefix(args: SageMakerEndpointArgs) -> str | None:
    """Where this endpoint's captured records land (``.../ENDPOINT``), or None."""
    capture = args.data_capture
    if not capture.enabled or capture.destination_s3_uri is None:
        return None
    return f"{capture.destination_s3_uri.rstrip('/')}/{args.endpoint_name}"


def _variant_inputs(variant: VariantArgs, model_name: str) -> dict[str, Any]:
    """One ``production_variants`` entry (snake_case, as pulumi-aws takes it)."""
    entry: dict[str, Any] = {
        "variant_name": variant.name,
        "model_name": model_name,
        # InitialVariantWeight is a Float in SageMaker's API; SageMaker routes by each weight's
        # share of the sum, so integer percent route as given.
        "initial_variant_weight": float(variant.weight),
    }
    if variant.serverless is not None:
        serverless: dict[str, Any] = {
            "memory_size_in_mb": variant.serverless.memory_mb,
            "max_concurrency": variant.serverless.max_concurrency,
        }
        if variant.serverless.provisioned_concurrency is not None:
            serverless["provisioned_concurrency"] = variant.serverless.provisioned_concurrency
        entry["serverless_config"] = serverless
    else:
        entry["instance_type"] = variant.instance_type
        entry["initial_instance_count"] = variant.instance_count
    optional = {
        "volume_size_in_gb": variant.volume_size_gb,
        "container_startup_health_check_timeout_in_seconds": (
            variant.container_startup_health_check_timeout_s
        ),
        "model_data_download_timeout_in_seconds": variant.model_data_download_timeout_s,
    }
    entry.update({k: v for k, v in optional.items() if v is not None})
    return entry


def _data_capture_inputs(args: SageMakerEndpointArgs) -> dict[str, Any] | None:
    capture = args.data_capture
    if not capture.enabled:
        return None
    modes = [("Input", capture.capture_input), ("Output", capture.capture_output)]
    config: dict[str, Any] = {
        "enable_capture": True,
        "destination_s3_uri": capture.destination_s3_uri,
        "initial_sampling_percentage": capture.sampling_percentage,
        "capture_options": [{"capture_mode": mode} for mode, on in modes if on],
        "capture_content_type_header": {
            "json_content_types": list(capture.json_content_types),
            "csv_content_types": list(capture.csv_content_types),
        },
    }
    if capture.kms_key_arn is not None:
        config["kms_key_id"] = capture.kms_key_arn
    return config


class SageMakerEndpoint(pulumi.ComponentResource):
    """A SageMaker real-time endpoint with weighted (or serverless, or shadow) variants.

    Declares, as children: the execution role and its least-privilege policy; one
    ``sagemaker.Model`` per variant; one ``EndpointConfiguration``; two rollback alarms per
    production variant; the ``Endpoint`` with a blue/green ``deployment_config``; and
    autoscaling per variant that asks for it.

    Updates: models and endpoint configurations are immutable and an endpoint sees a new
    configuration only under a new name, so both are named after a hash of their content
    (:mod:`infra.aws.naming`). Any change yields a new name, Pulumi creates the replacement first
    (``delete_before_replace=False``), updates the endpoint to it — SageMaker shifts traffic
    blue/green, watching the alarms — and only then deletes the old configuration and models.
    Variant names stay as configured, which blue/green updates require. The endpoint's
    timeouts are derived from the rollout's waits (:mod:`infra.aws.deployment`).

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

        images = {v.name: _image(v, repository) for v in args.all_variants}
        grants = pulumi.Output.all(
            partition=partition.partition,
            region=region.region,
            account=identity.account_id,
            repository_arn=repository.arn if repository is not None else None,
        ).apply(lambda env: _grants(args, env))
        execution = create_execution_role(
            f"{resource_name}-execution", grants, tags=args.tags, parent=self
        )

        models = {
            v.name: self._model(resource_name, args, v, images[v.name], execution)
            for v in args.all_variants
        }
        config = self._endpoint_config(resource_name, args, models)

        alarms = create_rollback_alarms(
            resource_name, args.endpoint_name, args.variants, args.alarms, self
        )
        names = [n for v in args.variants for n in alarm_names(args.endpoint_name, v.name)]
        endpoint = aws.sagemaker.Endpoint(
            resource_name,
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config=deployment_config(args.deployment, args.variants, names),
            tags=args.tags or None,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*alarms, execution.policy],
                custom_timeouts=custom_timeouts(args.deployment, args.all_variants),
            ),
        )
        for variant in args.all_variants:
            if variant.autoscaling is not None:
                create_variant_scaling(
                    f"{resource_name}-{variant.name}-scaling",
                    endpoint.name,
                    variant.name,
                    variant.autoscaling,
                    self,
                )

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.endpoint_config_name = config.name
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

    def _model(
        self,
        resource_name: str,
        args: SageMakerEndpointArgs,
        variant: VariantArgs,
        image: pulumi.Output[str],
        execution: ExecutionRole,
    ) -> aws.sagemaker.Model:
        spec = variant.model
        role_arn = execution.role.arn
        environment = {
            **spec.environment,
            contract.MODEL_NAME_ENV: spec.model_name,
            contract.MODEL_VERSION_ENV: spec.model_version,
            contract.VARIANT_ENV: variant.name,
        }
        vpc = (
            aws.sagemaker.ModelVpcConfigArgs(
                subnets=list(spec.vpc.subnet_ids),
                security_group_ids=list(spec.vpc.security_group_ids),
            )
            if spec.vpc is not None
            else None
        )
        content = pulumi.Output.all(image=image, role=role_arn).apply(
            lambda resolved: {
                **resolved,
                "model_data_url": spec.model_data_url,
                "environment": environment,
                "vpc": spec.vpc.model_dump(mode="json") if spec.vpc else None,
                "network_isolation": spec.network_isolation,
            }
        )
        return aws.sagemaker.Model(
            f"{resource_name}-{variant.name}",
            name=content.apply(lambda c: content_name(f"{args.endpoint_name}-{variant.name}", c)),
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image, model_data_url=spec.model_data_url, environment=environment
            ),
            execution_role_arn=role_arn,
            vpc_config=vpc,
            enable_network_isolation=spec.network_isolation,
            tags=args.tags or None,
            opts=pulumi.ResourceOptions(
                parent=self, delete_before_replace=False, depends_on=[execution.policy]
            ),
        )

    def _endpoint_config(
        self,
        resource_name: str,
        args: SageMakerEndpointArgs,
        models: dict[str, aws.sagemaker.Model],
    ) -> aws.sagemaker.EndpointConfiguration:
        names = pulumi.Output.all(**{name: model.name for name, model in models.items()})

        def content(model_names: dict[str, str]) -> dict[str, Any]:
            shadow = args.shadow_variant
            return {
                "production_variants": [
                    _variant_inputs(v, model_names[v.name]) for v in args.variants
                ],
                "shadow_production_variants": (
                    [_variant_inputs(shadow, model_names[shadow.name])] if shadow else None
                ),
                "data_capture_config": _data_capture_inputs(args),
                "kms_key_arn": args.kms_key_arn,
            }

        inputs = names.apply(content)
        return aws.sagemaker.EndpointConfiguration(
            f"{resource_name}-config",
            name=inputs.apply(lambda c: content_name(args.endpoint_name, c)),
            production_variants=inputs.apply(lambda c: c["production_variants"]),
            shadow_production_variants=inputs.apply(lambda c: c["shadow_production_variants"]),
            data_capture_config=inputs.apply(lambda c: c["data_capture_config"]),
            kms_key_arn=args.kms_key_arn,
            tags=args.tags or None,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )


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


def _grants(args: SageMakerEndpointArgs, env: dict[str, Any]) -> ExecutionGrants:
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
    keys = [k for k in (args.data_capture.kms_key_arn,) if k and args.data_capture.enabled]
    return ExecutionGrants(
        partition=partition,
        region=region,
        account_id=account,
        endpoint_name=args.endpoint_name,
        model_data_urls=tuple(v.model.model_data_url for v in args.all_variants),
        repository_arns=tuple(sorted(repositories)),
        metrics_namespace=args.metrics_namespace,
        capture_s3_uri=args.data_capture.destination_s3_uri if args.data_capture.enabled else None,
        capture_kms_key_arns=tuple(keys),
        subnet_ids=tuple(s for vpc in vpcs for s in vpc.subnet_ids),
        security_group_ids=tuple(g for vpc in vpcs for g in vpc.security_group_ids),
    )
