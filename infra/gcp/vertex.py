"""``ml-endpoints:gcp:VertexEndpoint``: a Vertex AI endpoint serving named variants of our
image, with the traffic split given by variant name, and with ``alerts`` the Cloud Monitoring
alert policies on the container's signal lines (:mod:`infra.gcp.signal_alerts`)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.gcp.apis import AIPLATFORM, IAM, ProjectApis, apis_or_own
from infra.gcp.config import VariantArgs, VertexEndpointArgs
from infra.gcp.service_account import ModelServiceAccount, account_id_for, bucket_readers
from infra.gcp.signal_alerts import declare_signal_alerts
from infra.gcp.vertex_deployments import owner_of
from infra.gcp.vertex_provider import VertexDeploymentProvider
from infra.secret_values import fingerprints, to_input
from serving import contract

ACT_AS_ROLE = "roles/iam.serviceAccountUser"
"""Holds ``iam.serviceAccounts.actAs``, which deploying a model as a service account needs."""


class VertexDeployment(pulumi.dynamic.Resource, module="ml-endpoints/gcp", name="VertexDeployment"):
    """The models uploaded and deployed to one endpoint (see :mod:`infra.gcp.vertex_provider`)."""

    deployed: pulumi.Output[dict[str, Any]]
    """Per variant: ``model``, ``deployed_model_id``, ``release``, ``scaling``, ``labels``."""
    cleanup_pending: pulumi.Output[list[dict[str, Any]]]
    """Retired deployments whose removal failed; retried on the next update."""

    def __init__(
        self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            VertexDeploymentProvider(),
            name,
            {**props, "deployed": None, "cleanup_pending": None},
            opts,
        )


def variant_props(
    args: VertexEndpointArgs, variant: VariantArgs, service_account: pulumi.Input[str]
) -> dict[str, Any]:
    """What the provider needs to upload and deploy one variant (secret env values as secret
    Outputs, named with their fingerprints in ``secret_env``)."""
    secret = fingerprints(variant.env)
    return {
        "name": variant.name,
        "model_display_name": f"{args.model_name}-{variant.name}",
        "image": variant.image,
        "artifact_uri": variant.artifact_uri,
        **({"secret_env": secret} if secret else {}),
        "env": {
            **to_input(variant.env),
            contract.MODEL_NAME_ENV: args.model_name,
            contract.MODEL_VERSION_ENV: variant.model_version,
            contract.VARIANT_ENV: variant.name,
        },
        "labels": {**args.labels, "ml-endpoints-variant": variant.name},
        "machine_type": variant.machine_type,
        "accelerator_type": variant.accelerator.type if variant.accelerator else None,
        "accelerator_count": variant.accelerator.count if variant.accelerator else 0,
        "min_replicas": variant.replica_bounds[0],
        "max_replicas": variant.replica_bounds[1],
        "cpu_utilization_target": variant.cpu_utilization_target,
        "accelerator_duty_cycle_target": variant.accelerator_duty_cycle_target,
        "service_account": service_account,
    }


def deployment_props(
    args: VertexEndpointArgs, endpoint_name: pulumi.Input[str], service_account: pulumi.Input[str]
) -> dict[str, Any]:
    """The inputs of the :class:`VertexDeployment` for ``args`` on one endpoint."""
    return {
        "project": args.project,
        "region": args.region,
        "endpoint": endpoint_name,
        "api_endpoint": args.endpoint_api,
        "timeout_seconds": args.operation_timeout_seconds,
        "variants": [variant_props(args, v, service_account) for v in args.variants],
        "traffic": args.split,
        # One deployed model at a time on a VPC-peered endpoint.
        "private": args.network is not None,
    }


def member_of(email: str) -> str:
    """The IAM member for the e-mail of an authenticated identity."""
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{email}"


def deploying_member(parent: pulumi.Resource) -> pulumi.Output[str]:
    """The identity running ``pulumi up`` (its credentials' e-mail, from Google's tokeninfo;
    in CI the service account that the workflow impersonates)."""
    info = gcp.organizations.get_client_open_id_user_info_output(
        opts=pulumi.InvokeOutputOptions(parent=parent)
    )
    return info.email.apply(member_of)


class VertexEndpoint(pulumi.ComponentResource):
    """An endpoint (``gcp.vertex.AiEndpoint``), the service account the models run as, and a
    :class:`VertexDeployment` of every variant with the traffic split by name."""

    endpoint: gcp.vertex.AiEndpoint
    deployment: VertexDeployment
    service_account: gcp.serviceaccount.Account
    endpoint_name: pulumi.Output[str]
    """``projects/PROJECT/locations/REGION/endpoints/ID``."""
    deployed_model_ids: pulumi.Output[dict[str, str]]
    service_account_email: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: VertexEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        apis: ProjectApis | None = None,
    ) -> None:
        super().__init__("ml-endpoints:gcp:VertexEndpoint", name, None, opts)
        enabled = apis_or_own(apis, self)
        aiplatform = enabled.enable(args.project, AIPLATFORM)
        account = ModelServiceAccount(
            name,
            project=args.project,
            account_id=args.service_account_id or account_id_for(f"{pulumi.get_stack()}-{name}"),
            artifact_uris=[v.artifact_uri for v in args.variants],
            parent=self,
            depends_on=enabled.enable(args.project, IAM),
        )
        self.service_account = account.account
        self.service_account_email = account.email
        # Model upload copies the artifacts with the project's Vertex AI service agent
        # (service-PROJECT_NUMBER@gcp-sa-aiplatform.iam.gserviceaccount.com; "Vertex AI service
        # agents", access to a Cloud Storage bucket in another project): it needs read access
        # on the bucket wherever that lives, like the models' own account.
        agent = gcp.projects.ServiceIdentity(
            f"{name}-service-agent",
            project=args.project,
            service=AIPLATFORM,
            opts=pulumi.ResourceOptions(parent=self, depends_on=aiplatform),
        )
        agent_grants = bucket_readers(
            f"{name}-agent-read", [v.artifact_uri for v in args.variants], agent.member, self
        )
        # Deploying a model that runs as this account needs iam.serviceAccounts.actAs on it
        # (DeployModel, "Use a custom service account", Vertex AI documentation); creating the
        # account grants its creator nothing on it.
        act_as = gcp.serviceaccount.IAMMember(
            f"{name}-deployer-act-as",
            service_account_id=account.account.name,
            role=ACT_AS_ROLE,
            member=args.deployer or deploying_member(self),
            opts=pulumi.ResourceOptions(parent=self),
        )
        logging = args.request_logging
        self.endpoint = gcp.vertex.AiEndpoint(
            name,
            name=args.endpoint_id,
            project=args.project,
            location=args.region,
            region=args.region,
            display_name=args.display_name,
            labels=args.labels or None,
            network=args.network,
            predict_request_response_logging_config=None
            if logging is None
            else gcp.vertex.AiEndpointPredictRequestResponseLoggingConfigArgs(
                enabled=True,
                sampling_rate=logging.sampling_rate,
                bigquery_destination=gcp.vertex.AiEndpointPredictRequestResponseLoggingConfigBigqueryDestinationArgs(
                    output_uri=logging.bigquery_table
                ),
            ),
            # The deployment below owns the traffic split (keyed by IDs known only after it).
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["traffic_split"], depends_on=aiplatform
            ),
        )
        self.endpoint_name = pulumi.Output.concat(
            "projects/", args.project, "/locations/", args.region, "/endpoints/", self.endpoint.name
        )
        owner = owner_of(pulumi.get_project(), pulumi.get_stack(), f"{name}-deployment")
        self.deployment = VertexDeployment(
            f"{name}-deployment",
            {**deployment_props(args, self.endpoint_name, account.email), "owner": owner},
            # The models must be able to read their artifacts the moment they start, and the
            # deploying identity must be allowed to run them as the account.
            pulumi.ResourceOptions(
                parent=self, depends_on=[*account.grants, *agent_grants, act_as]
            ),
        )
        if args.alerts is not None:
            declare_signal_alerts(
                name,
                f"{pulumi.get_stack()}-{name}",
                args.project,
                self.endpoint.name,
                args.alerts,
                parent=self,
            )
        self.deployed_model_ids = self.deployment.deployed.apply(
            lambda deployed: {name: r["deployed_model_id"] for name, r in (deployed or {}).items()}
        )
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "deployed_model_ids": self.deployed_model_ids,
                "service_account_email": self.service_account_email,
                "traffic": args.split,
            }
        )
