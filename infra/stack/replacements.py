"""Which change to a declared resource replaces it instead of updating it: one table.

A reviewer of ``ml-endpoints diff`` must see whether a change is an edit or a new GPU pool,
fleet or endpoint. The answer comes from the providers themselves, never from guesses:

- bridged providers (pulumi-aws, pulumi-gcp) replace a resource when a changed attribute is
  ``ForceNew`` in the Terraform schema they wrap (``hashicorp/terraform-provider-aws``,
  ``hashicorp/terraform-provider-google``); each rule cites the file it was read from;
- pulumi-kubernetes replaces an object when ``.metadata.name``, ``.metadata.namespace`` or a
  kind's immutable fields change (``provider/pkg/provider/diff.go``: a Deployment's
  ``.spec.selector``, a Service's ``.spec.clusterIP``, ...), and a provider when the cluster
  it points at changes (``DiffConfig`` in ``provider/pkg/provider/provider.go``);
- the Vertex dynamic provider replaces on the keys its own ``diff`` names.

How Pulumi replaces (``pkg/resource/deploy/step_generator.go`` in pulumi/pulumi): it creates the
new resource first and deletes the old one afterwards, unless the provider asks to delete first
or the program's ``delete_before_replace`` option says otherwise (the option wins). Providers
ask to delete first when the new resource must have the same identity as the old one:

- pulumi-terraform-bridge (``nameRequiresDeleteBeforeReplace``, ``pkg/tfbridge/schema.go``):
  the program set an auto-nameable name itself (pulumi-aws ``provider/autonaming.go``
  auto-names every input called ``name``; pulumi-gcp likewise), so the replacement would take
  the same name;
- pulumi-aws (``provider/resource_overrides.go``): ``DeleteBeforeReplace`` for ECR lifecycle
  policies and IAM role policy attachments (a create then a delete would delete the new one);
- pulumi-kubernetes: an object whose ``metadata.name`` the program fixed keeps that name and
  namespace.

The table covers every resource type the program declares and every property it sets
(``tests/infra/test_replacements.py`` checks this against the offline plans), so a new
resource or property cannot reach a plan without a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from infra.aws.endpoint_provider import INPUT_KEYS as SAGEMAKER_INPUT_KEYS
from infra.aws.endpoint_provider import REPLACE_KEYS as SAGEMAKER_REPLACE_KEYS
from infra.gcp.vertex_deployments import INPUT_KEYS, REPLACE_KEYS

_AWS = "hashicorp/terraform-provider-aws internal/service/"
_GOOGLE = "hashicorp/terraform-provider-google google/services/"
_K8S = "pulumi/pulumi-kubernetes provider/pkg/provider/diff.go"
_PULUMI_AWS = "pulumi/pulumi-aws provider/resource_overrides.go"


class Action(Enum):
    """What applying a planned change does to one resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True)
class Rule:
    """How one resource type reacts to changed inputs.

    Property paths are the wire names the plan records (``primaryContainer.image``), with ``[]``
    for list elements; a path covers everything below it (``spec`` covers ``spec.replicas``).
    The longest covering path decides.
    """

    source: str
    """Where the verdicts were read (repository and file)."""
    replace: tuple[str, ...] = ()
    """Paths whose change forces a new resource (ForceNew, immutable)."""
    update: tuple[str, ...] = ()
    """Paths the provider changes in place."""
    name: str | None = None
    """The property holding the physical name; when the program sets it, the name is fixed."""
    autonamed: bool = True
    """Pulumi generates ``name`` when the program leaves it out (so a fixed name makes the
    bridge delete first); false: a replacement with the same name cannot be created first."""
    delete_first: bool = False
    """The provider always deletes before it replaces."""
    notes: Mapping[str, str] | None = None
    """Per path: what the reviewer should know beyond the verdict."""

    def verdict(self, path: str) -> bool | None:
        """True: a change at ``path`` replaces; False: updates in place; None: unknown."""
        steps = _steps(path)
        best: tuple[int, bool] | None = None
        for replaces, paths in ((True, self.replace), (False, self.update)):
            for candidate in paths:
                own = _steps(candidate)
                if steps[: len(own)] == own and (best is None or len(own) > best[0]):
                    best = (len(own), replaces)
        return None if best is None else best[1]

    def note(self, path: str) -> str | None:
        """The note of the longest path covering ``path``, if any."""
        steps = _steps(path)
        found = [
            (len(_steps(p)), text)
            for p, text in (self.notes or {}).items()
            if steps[: len(_steps(p))] == _steps(p)
        ]
        return max(found)[1] if found else None


def _steps(path: str) -> tuple[str, ...]:
    """``a.b[2].c`` and ``a.b[].c`` -> ``("a", "b", "[]", "c")``."""
    return tuple(s for s in re.split(r"\.|(\[\d*\])", re.sub(r"\[\d+\]", "[]", path)) if s)


# ----------------------------------------------------------------------------- AWS (bridged)

_TAGS = ("tags",)

AWS: dict[str, Rule] = {
    "aws:ecr/repository:Repository": Rule(
        source=_AWS + "ecr/repository.go",
        replace=("name", "encryptionConfigurations"),
        update=(
            "forceDelete",
            "imageScanningConfiguration",
            "imageTagMutability",
            "imageTagMutabilityExclusionFilters",
            *_TAGS,
        ),
        name="name",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": Rule(
        source=_AWS + f"ecr/lifecycle_policy.go (no Update); {_PULUMI_AWS} DeleteBeforeReplace",
        replace=("policy", "repository"),
        delete_first=True,
    ),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": Rule(
        source=_AWS + "ecr/repository_policy.go",
        replace=("repository",),
        update=("policy",),
    ),
    "aws:sagemaker/model:Model": Rule(
        source=_AWS + "sagemaker/model.go (every attribute but tags is ForceNew)",
        replace=(
            "name",
            "primaryContainer",
            "containers",
            "executionRoleArn",
            "enableNetworkIsolation",
            "vpcConfig",
            "inferenceExecutionConfig",
        ),
        update=_TAGS,
        name="name",
        notes={"name": "content-named: a new model is created before the old one is deleted"},
    ),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": Rule(
        source=_AWS + "sagemaker/endpoint_configuration.go (every attribute but tags is ForceNew)",
        replace=(
            "name",
            "productionVariants",
            "shadowProductionVariants",
            "dataCaptureConfig",
            "kmsKeyArn",
            "asyncInferenceConfig",
        ),
        update=_TAGS,
        name="name",
        notes={
            "name": "content-named: the endpoint switches to a new configuration (blue/green)",
            "productionVariants": "a new configuration: SageMaker provisions a new fleet and "
            "shifts traffic to it",
        },
    ),
    "aws:sagemaker/endpoint:Endpoint": Rule(
        source=_AWS + "sagemaker/endpoint.go",
        replace=("name", "deploymentConfig.autoRollbackConfiguration"),
        update=(
            "endpointConfigName",
            "deploymentConfig.blueGreenUpdatePolicy",
            "deploymentConfig.rollingUpdatePolicy",
            *_TAGS,
        ),
        name="name",
        notes={
            "endpointConfigName": "UpdateEndpoint: SageMaker shifts traffic to the new "
            "configuration as deploymentConfig says"
        },
    ),
    "aws:appautoscaling/target:Target": Rule(
        source=_AWS + "appautoscaling/target.go",
        replace=("resourceId", "scalableDimension", "serviceNamespace"),
        update=("minCapacity", "maxCapacity", "roleArn", "suspendedState", *_TAGS),
    ),
    "aws:appautoscaling/policy:Policy": Rule(
        source=_AWS + "appautoscaling/policy.go",
        replace=("name", "resourceId", "scalableDimension", "serviceNamespace"),
        update=(
            "policyType",
            "targetTrackingScalingPolicyConfiguration",
            "stepScalingPolicyConfiguration",
        ),
        name="name",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Rule(
        source=_AWS + f"cloudwatch/metric_alarm.go (alarm_name is ForceNew); {_PULUMI_AWS}",
        replace=("name",),
        update=(
            "alarmDescription",
            "alarmActions",
            "okActions",
            "insufficientDataActions",
            "actionsEnabled",
            "comparisonOperator",
            "datapointsToAlarm",
            "dimensions",
            "evaluateLowSampleCountPercentiles",
            "evaluationPeriods",
            "extendedStatistic",
            "metricName",
            "metricQueries",
            "namespace",
            "period",
            "statistic",
            "threshold",
            "thresholdMetricId",
            "treatMissingData",
            "unit",
            *_TAGS,
        ),
        name="name",
    ),
    "aws:eks/cluster:Cluster": Rule(
        source=_AWS + "eks/cluster.go",
        replace=(
            "name",
            "roleArn",
            "accessConfig.bootstrapClusterCreatorAdminPermissions",
            "bootstrapSelfManagedAddons",
            "kubernetesNetworkConfig.ipFamily",
            "kubernetesNetworkConfig.serviceIpv4Cidr",
            "outpostConfig",
            "remoteNetworkConfig",
        ),
        update=(
            "version",
            "vpcConfig",
            "accessConfig.authenticationMode",
            "enabledClusterLogTypes",
            "encryptionConfig",
            "upgradePolicy",
            "zonalShiftConfig",
            *_TAGS,
        ),
        name="name",
    ),
    "aws:eks/accessEntry:AccessEntry": Rule(
        source=_AWS + "eks/access_entry.go (cluster_name, principal_arn, type are ForceNew)",
        replace=("clusterName", "principalArn", "type"),
        update=("kubernetesGroups", "userName", "tags"),
    ),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": Rule(
        source=_AWS + "eks/access_policy_association.go (no update: every attribute ForceNew)",
        replace=("accessScope", "clusterName", "policyArn", "principalArn"),
    ),
    "aws:eks/nodeGroup:NodeGroup": Rule(
        source=_AWS + "eks/node_group.go",
        replace=(
            "amiType",
            "capacityType",
            "clusterName",
            "diskSize",
            "instanceTypes",
            "nodeGroupName",
            "nodeGroupNamePrefix",
            "nodeRoleArn",
            "remoteAccess",
            "subnetIds",
            "launchTemplate.id",
            "launchTemplate.name",
        ),
        update=(
            "labels",
            "taints",
            "scalingConfig",
            "updateConfig",
            "version",
            "releaseVersion",
            "forceUpdateVersion",
            "launchTemplate.version",
            "nodeRepairConfig",
            *_TAGS,
        ),
        name="nodeGroupName",
        notes={"instanceTypes": "a new node group: nodes are drained and replaced"},
    ),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": Rule(
        source=_AWS + "iam/openid_connect_provider.go",
        replace=("url",),
        update=("clientIdLists", "thumbprintLists", *_TAGS),
    ),
    "aws:iam/role:Role": Rule(
        source=_AWS + "iam/role.go",
        replace=("name", "namePrefix", "path"),
        update=(
            "assumeRolePolicy",
            "description",
            "forceDetachPolicies",
            "inlinePolicies",
            "managedPolicyArns",
            "maxSessionDuration",
            "permissionsBoundary",
            *_TAGS,
        ),
        name="name",
    ),
    "aws:iam/rolePolicy:RolePolicy": Rule(
        source=_AWS + "iam/role_policy.go",
        replace=("name", "namePrefix", "role"),
        update=("policy",),
        name="name",
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Rule(
        source=_AWS + f"iam/role_policy_attachment.go (no Update); {_PULUMI_AWS} "
        "DeleteBeforeReplace",
        replace=("role", "policyArn"),
        delete_first=True,
    ),
}

# ----------------------------------------------------------------------------- GCP (bridged)

_LABELS = ("labels",)


def _iam_member(scope: str, updater: str) -> Rule:
    """An ``*_iam_member`` resource: no Update, every attribute is ForceNew (the binding is its
    identity: a replacement never has the old one's id)."""
    return Rule(
        source=f"{_GOOGLE}{updater} and hashicorp/terraform-provider-google "
        "google/tpgiamresource/resource_iam_member.go",
        replace=(scope, "role", "member", "condition"),
    )


GCP: dict[str, Rule] = {
    "gcp:artifactregistry/repository:Repository": Rule(
        source=_GOOGLE + "artifactregistry/resource_artifact_registry_repository.go",
        replace=(
            "format",
            "repositoryId",
            "kmsKeyName",
            "location",
            "mode",
            "project",
            "remoteRepositoryConfig",
            "mavenConfig",
        ),
        update=(
            "description",
            "dockerConfig",
            "cleanupPolicies",
            "cleanupPolicyDryRun",
            "vulnerabilityScanningConfig",
            "virtualRepositoryConfig",
            *_LABELS,
        ),
        name="repositoryId",
        autonamed=False,
    ),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": Rule(
        source=_GOOGLE + "artifactregistry/iam_artifact_registry_repository.go and "
        "hashicorp/terraform-provider-google google/tpgiamresource/resource_iam_member.go",
        replace=("project", "location", "repository", "role", "member", "condition"),
    ),
    "gcp:container/cluster:Cluster": Rule(
        source=_GOOGLE + "container/resource_container_cluster.go",
        replace=(
            "name",
            "location",
            "project",
            "initialNodeCount",
            "datapathProvider",
            "network",
            "subnetwork",
            "networkingMode",
            "ipAllocationPolicy",
            "clusterIpv4Cidr",
            "defaultMaxPodsPerNode",
            "enableAutopilot",
            "enableKubernetesAlpha",
            "privateClusterConfig.masterIpv4CidrBlock",
            "description",
        ),
        update=(
            "deletionProtection",
            "gatewayApiConfig",
            "releaseChannel",
            "removeDefaultNodePool",
            "workloadIdentityConfig",
            "minMasterVersion",
            "addonsConfig",
            "masterAuthorizedNetworksConfig",
            "resourceLabels",
            "loggingConfig",
            "monitoringConfig",
            "maintenancePolicy",
        ),
        name="name",
    ),
    "gcp:container/nodePool:NodePool": Rule(
        source=_GOOGLE + "container/resource_container_node_pool.go and node_config.go "
        "(nodePoolNodeConfigUpdate updates machine type, disk, labels, taints in place)",
        replace=(
            "cluster",
            "location",
            "project",
            "name",
            "namePrefix",
            "initialNodeCount",
            "maxPodsPerNode",
            "placementPolicy",
            "queuedProvisioning",
            "networkConfig",
            "nodeConfig.guestAccelerators",
            "nodeConfig.localSsdCount",
            "nodeConfig.metadata",
            "nodeConfig.minCpuPlatform",
            "nodeConfig.oauthScopes",
            "nodeConfig.preemptible",
            "nodeConfig.spot",
            "nodeConfig.serviceAccount",
            "nodeConfig.shieldedInstanceConfig",
            "nodeConfig.sandboxConfig",
            "nodeConfig.bootDiskKmsKey",
            "nodeConfig.reservationAffinity",
            "nodeConfig.advancedMachineFeatures",
            "nodeConfig.hostMaintenancePolicy",
            "nodeConfig.maxRunDuration",
            "nodeConfig.flexStart",
        ),
        update=(
            "autoscaling",
            "management",
            "nodeCount",
            "nodeLocations",
            "upgradeSettings",
            "version",
            "nodeConfig.machineType",
            "nodeConfig.diskSizeGb",
            "nodeConfig.diskType",
            "nodeConfig.imageType",
            "nodeConfig.labels",
            "nodeConfig.resourceLabels",
            "nodeConfig.taints",
            "nodeConfig.tags",
            "nodeConfig.workloadMetadataConfig",
            "nodeConfig.kubeletConfig",
            "nodeConfig.linuxNodeConfig",
            "nodeConfig.gcfsConfig",
            "nodeConfig.gvnic",
        ),
        name="name",
        notes={
            "nodeConfig.machineType": "in place, but GKE recreates every node of the pool "
            "(surge upgrade): pods are evicted",
            "nodeConfig.diskSizeGb": "in place, but GKE recreates every node of the pool",
            "nodeConfig.guestAccelerators": "a new GPU pool is created before the old one is "
            "deleted: GPU quota for both is needed",
        },
    ),
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": _iam_member(
        "cryptoKeyId", "kms/iam_kms_crypto_key.go"
    ),
    "gcp:logging/metric:Metric": Rule(
        source=_GOOGLE + "logging/resource_logging_metric.go",
        replace=(
            "project",
            "metricDescriptor.labels[].key",
            "metricDescriptor.labels[].valueType",
        ),
        update=(
            "name",
            "filter",
            "description",
            "disabled",
            "bucketName",
            "bucketOptions",
            "labelExtractors",
            "metricDescriptor",
            "valueExtractor",
            "deletionPolicy",
        ),
        name="name",
        notes={
            "name": "not ForceNew: the provider's update PUTs projects/P/metrics/{new name}, "
            "which the API creates; check that the metric under the old name is gone",
        },
    ),
    "gcp:monitoring/alertPolicy:AlertPolicy": Rule(
        source=_GOOGLE + "monitoring/resource_monitoring_alert_policy.go",
        replace=("project",),
        update=(
            "displayName",
            "combiner",
            "conditions",
            "documentation",
            "enabled",
            "notificationChannels",
            "severity",
            "userLabels",
            "alertStrategy",
            "deletionPolicy",
        ),
    ),
    "gcp:projects/iAMMember:IAMMember": _iam_member("project", "resourcemanager/iam_project.go"),
    "gcp:projects/service:Service": Rule(
        source=_GOOGLE + "resourcemanager/resource_google_project_service.go",
        replace=("project", "service"),
        update=("disableOnDestroy", "disableDependentServices", "checkIfServiceHasUsage"),
    ),
    "gcp:projects/serviceIdentity:ServiceIdentity": Rule(
        source="hashicorp/terraform-provider-google-beta google-beta/services/resourcemanager/"
        "resource_project_service_identity.go (no Update; Delete does nothing)",
        replace=("project", "service"),
    ),
    "gcp:serviceaccount/account:Account": Rule(
        source=_GOOGLE + "resourcemanager/resource_google_service_account.go",
        replace=("accountId", "project"),
        update=("displayName", "description", "disabled", "createIgnoreAlreadyExists"),
        name="accountId",
        autonamed=False,
    ),
    "gcp:serviceaccount/iAMMember:IAMMember": _iam_member(
        "serviceAccountId", "resourcemanager/iam_service_account.go"
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": _iam_member(
        "bucket", "storage/iam_storage_bucket.go"
    ),
    "gcp:vertex/aiEndpoint:AiEndpoint": Rule(
        source=_GOOGLE + "vertexai/resource_vertex_ai_endpoint.go",
        replace=(
            "name",
            "location",
            "region",
            "project",
            "network",
            "encryptionSpec",
            "privateServiceConnectConfig.enablePrivateServiceConnect",
        ),
        update=(
            "displayName",
            "description",
            "predictRequestResponseLoggingConfig",
            "trafficSplit",
            "dedicatedEndpointEnabled",
            "privateServiceConnectConfig",
            *_LABELS,
        ),
        name="name",
    ),
}

# ------------------------------------------------------------------------------- Kubernetes

_IDENTITY = ("metadata.name", "metadata.namespace")
_CONSTANT = ("apiVersion", "kind", "metadata")
"""``apiVersion`` and ``kind`` are part of the type token: they cannot change under one type."""


def _k8s(kind_fields: Iterable[str] = (), *, update: Iterable[str] = ("spec",)) -> Rule:
    return Rule(
        source=f"{_K8S} (forceNew, metadataForceNewProperties) and provider.go Diff",
        replace=(*_IDENTITY, *kind_fields),
        update=(*_CONSTANT, *update),
        name="metadata.name",
    )


_SELECTOR = ("spec.selector",)

KUBERNETES: dict[str, Rule] = {
    "kubernetes:apps/v1:Deployment": _k8s(_SELECTOR),
    "kubernetes:apps/v1:DaemonSet": _k8s(_SELECTOR),
    "kubernetes:core/v1:Service": _k8s(("spec.clusterIP",)),
    "kubernetes:core/v1:ServiceAccount": _k8s(
        update=("automountServiceAccountToken", "imagePullSecrets", "secrets")
    ),
    "kubernetes:core/v1:Namespace": _k8s(update=("spec",)),
    # Without the provider's enableSecretMutable / enableConfigMapMutable (off by default), and
    # always for an immutable object, a content change replaces it (diff.go forceNewProperties;
    # CHANGELOG 4.18.0).
    "kubernetes:core/v1:Secret": _k8s(("type", "data", "stringData"), update=("immutable",)),
    "kubernetes:core/v1:ConfigMap": _k8s(("data", "binaryData"), update=("immutable",)),
    # policy/v1 PodDisruptionBudgets are mutable; only v1beta1 lists .spec as forceNew.
    "kubernetes:policy/v1:PodDisruptionBudget": _k8s(),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": _k8s(),
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": _k8s(),
    # Custom resources: only the identity forces a new object.
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": _k8s(),
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": _k8s(),
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": _k8s(),
    "kubernetes:networking.gke.io/v1:HealthCheckPolicy": _k8s(),
    "pulumi:providers:kubernetes": Rule(
        source="pulumi/pulumi-kubernetes provider/pkg/provider/provider.go DiffConfig",
        replace=("kubeconfig", "context", "cluster", "renderYamlToDirectory"),
        update=("namespace", "enableServerSideApply", "suppressHelmHookWarnings"),
        notes={
            "kubeconfig": "replaced when it names another cluster: every object on this "
            "provider is then replaced too",
            "context": "another cluster: every object on this provider is replaced too",
        },
    ),
}

# ----------------------------------------------------------------------- our own providers

OWN: dict[str, Rule] = {
    "pulumi-python:dynamic/ml-endpoints/gcp:VertexDeployment": Rule(
        source="infra/gcp/vertex_provider.py VertexDeploymentProvider.diff (REPLACE_KEYS, "
        "INPUT_KEYS of infra/gcp/vertex_deployments.py; owner: an update, private: no diff)",
        replace=REPLACE_KEYS,
        update=(*(k for k in INPUT_KEYS if k not in REPLACE_KEYS), "owner", "private"),
        notes={
            "variants": "image or machine changes deploy new models before undeploying the "
            "old ones; weight-only changes patch the traffic split",
        },
    ),
    "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment": Rule(
        source="infra/aws/endpoint_provider.py SageMakerEndpointProvider.diff",
        replace=SAGEMAKER_REPLACE_KEYS,
        update=tuple(k for k in SAGEMAKER_INPUT_KEYS if k not in SAGEMAKER_REPLACE_KEYS),
        notes={
            "models": "a release: one blue/green UpdateEndpoint keeping autoscaled counts",
            "config": "a release: one blue/green UpdateEndpoint keeping autoscaled counts",
            "weights": "UpdateEndpointWeightsAndCapacities in place, no new fleet",
            "deployment": "no call: used by the next release",
        },
    ),
}

#: Every resource type the program declares -> its rule.
RULES: dict[str, Rule] = {**AWS, **GCP, **KUBERNETES, **OWN}

COMPONENT_PREFIX = "ml-endpoints:"
"""Our ComponentResources: they hold no inputs; their children carry every change."""


# ------------------------------------------------------------------------------ verdicts


@dataclass(frozen=True)
class Verdict:
    """What a planned change does to one resource, and why."""

    action: Action
    replaced_by: tuple[str, ...] = ()
    """The changed paths that force the replacement."""
    delete_first: bool = False
    """The old resource is deleted before the new one exists (downtime, or quota freed)."""
    conflict: str | None = None
    """Why creating the replacement first would fail (same fixed name), if it would."""
    notes: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    """Changed paths the table has no verdict for (treated as updates)."""


def rule_for(type_token: str) -> Rule | None:
    """The rule of a resource type; None for components and types the table lacks."""
    return RULES.get(type_token)


def classify(
    type_token: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    changed: Iterable[str],
    *,
    delete_before_replace: bool | None = None,
) -> Verdict:
    """Update or replace: ``changed`` are the changed input paths of a resource of
    ``type_token`` whose inputs went from ``before`` to ``after``; ``delete_before_replace``
    is the program's resource option when it set one."""
    paths = list(changed)
    rule = rule_for(type_token)
    if rule is None:
        unknown = () if type_token.startswith(COMPONENT_PREFIX) else tuple(paths)
        return Verdict(Action.UPDATE, unknown=unknown)
    replaced = tuple(p for p in paths if rule.verdict(p) is True)
    unknown = tuple(p for p in paths if rule.verdict(p) is None)
    notes = tuple(dict.fromkeys(n for p in paths if (n := rule.note(p)) is not None))
    if not replaced:
        return Verdict(Action.UPDATE, notes=notes, unknown=unknown)
    first, conflict = _delete_first(type_token, rule, before, after, delete_before_replace)
    return Verdict(Action.REPLACE, replaced, first, conflict, notes, unknown)


def _delete_first(
    type_token: str,
    rule: Rule,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    option: bool | None,
) -> tuple[bool, str | None]:
    """(delete first?, why creating first would fail) for a replacement."""
    fixed = _value(after, rule.name) if rule.name else None
    same_name = fixed is not None and fixed == _value(before, rule.name or "")
    if type_token.startswith("kubernetes:"):
        same_name = same_name and _value(after, "metadata.namespace") == _value(
            before, "metadata.namespace"
        )
    if option is not None:
        first = option
    elif rule.delete_first:
        first = True
    elif type_token.startswith("kubernetes:"):
        first = same_name
    else:
        first = fixed is not None and rule.autonamed
    conflict = None
    if same_name and not first:
        conflict = f"{rule.name} {fixed!r} stays the same: creating the replacement first fails"
    return first, conflict


def _value(inputs: Mapping[str, Any], path: str) -> Any:
    value: Any = inputs
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def uncovered(type_token: str, paths: Iterable[str]) -> list[str]:
    """The ``paths`` of a ``type_token`` resource the table gives no verdict for (all of them
    when the type is missing); components have no inputs and are always covered."""
    if type_token.startswith(COMPONENT_PREFIX):
        return []
    rule = rule_for(type_token)
    return [p for p in paths if rule is None or rule.verdict(p) is None]
