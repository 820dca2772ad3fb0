"""Pulumi's own mocks (``pulumi.runtime.set_mocks``), as ``ml-endpoints plan`` and the tests use
them: one place that says what the clouds would compute.

The mocks echo every resource's inputs as its outputs and add what a cloud computes and the
components read back (ARNs, repository URLs, cluster endpoints and CAs, service account
e-mails), with fixed placeholders so plans are deterministic. Every registration is recorded
with the options the engine receives (parent, provider, dependencies, timeouts, replacement).
Inputs are recorded in wire form: camelCase keys, numbers as floats.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

PROJECT = "ml-endpoints"
ACCOUNT = "123456789012"
REGION = "us-east-1"
GCP_PROJECT = "ml-project"
"""The project of a GCP resource that names none."""
GCP_PROJECT_NUMBER = "123456789"
"""The number of every GCP project (service agents are named after it)."""
DEPLOYER = "deployer@ml-project.iam.gserviceaccount.com"
"""Whom the Google credentials authenticate (``getClientOpenIdUserInfo``)."""
OIDC_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

#: What the clouds compute and the components read back, per type token.
COMPUTED: dict[str, dict[str, Any]] = {
    "aws:eks/cluster:Cluster": {
        "endpoint": "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTi1DQS0tLS0t"},
        "identities": [{"oidcs": [{"issuer": OIDC_ISSUER}]}],
    },
    "gcp:container/cluster:Cluster": {
        "endpoint": "34.118.0.10",
        "masterAuth": {"clusterCaCertificate": "LS0tLS1HS0UtQ0EtLS0t"},
    },
}

#: What provider functions (invokes) return, per token.
CALLS: dict[str, dict[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": ACCOUNT,
        "userId": "test",
        "id": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
    },
    "gcp:organizations/getClientOpenIdUserInfo:getClientOpenIdUserInfo": {
        "email": DEPLOYER,
        "id": DEPLOYER,
    },
    "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION, "id": REGION},
    "aws:index/getPartition:getPartition": {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "id": "aws",
    },
}


#: ARNs of the AWS types whose ARN the components read, as AWS forms them.
ARNS: dict[str, str] = {
    "aws:iam/role:Role": f"arn:aws:iam::{ACCOUNT}:role/{{name}}",
    "aws:ecr/repository:Repository": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{{name}}",
    "aws:sagemaker/endpoint:Endpoint": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{{name}}",
}


def computed_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A resource's outputs: its inputs plus what the cloud computes (``typ``: type token)."""
    outputs = {**inputs, **COMPUTED.get(typ, {})}
    outputs.setdefault("name", name)
    name = outputs["name"]
    if typ.startswith("aws:"):
        service = typ.split(":")[1].split("/")[0]
        arn = ARNS.get(typ, f"arn:aws:{service}:{REGION}:{ACCOUNT}:{{name}}")
        outputs.setdefault("arn", arn.format(name=name))
    if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        issuer = str(inputs.get("url", "")).removeprefix("https://")
        outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"
    if typ == "aws:ecr/repository:Repository":
        outputs["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"
    if typ.startswith("kubernetes:") and isinstance(inputs.get("metadata"), dict):
        metadata = inputs["metadata"]
        if not metadata.get("name"):  # pulumi-kubernetes names it: NAME-<8 random hex>
            suffix = hashlib.sha256(name.encode()).hexdigest()[:8]
            outputs["metadata"] = {**metadata, "name": f"{name}-{suffix}"}
    if typ == "gcp:projects/serviceIdentity:ServiceIdentity":
        # Google's service agents: service-PROJECT_NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com
        agent = str(inputs["service"]).split(".")[0]
        email = f"service-{GCP_PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
        outputs["email"] = email
        outputs["member"] = f"serviceAccount:{email}"
    if typ == "gcp:serviceaccount/account:Account":
        project = inputs.get("project", GCP_PROJECT)
        email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
        outputs["email"] = email
        outputs["name"] = f"projects/{project}/serviceAccounts/{email}"
    return outputs


@dataclass
class Declared:
    """One resource the program declared, with the options the engine received."""

    type: str
    name: str
    inputs: dict[str, Any]
    urn: str
    parent: str | None
    provider: str | None
    """The provider reference as the engine gets it (``URN::ID``)."""
    dependencies: tuple[str, ...] = ()
    delete_before_replace: bool | None = None
    """The program's ``delete_before_replace`` option; None when it set none."""
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    protect: bool = False
    import_id: str | None = None
    """The program's ``import_`` option (the ID of an existing resource to adopt); None when
    the resource is to be created."""
    aliases: tuple[str, ...] = ()
    """The names the program's ``aliases`` option says this resource had before
    (``pulumi.Alias(name=...)``, or the name at the end of an alias URN)."""
    wire: dict[str, Any] = field(default_factory=dict)
    """The inputs exactly as the engine receives them (``RegisterResourceRequest.object``): a
    secret keeps its marker where it is. :attr:`inputs` is Pulumi's deserialisation, which
    moves a nested secret's marker up to the top-level property holding it."""


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi's mocks that compute cloud outputs (:func:`computed_outputs`) and remember every
    declared resource (:attr:`resources`) and provider call (:attr:`calls`).

    Pulumi's ``MockResourceArgs`` carries neither the parent nor the resource options, so
    :class:`RecordingMonitor` hands each registration request over before the mock sees it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[Declared] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.requests: dict[tuple[str, str], tuple[Any, str]] = {}
        self.warnings: list[str] = []
        """What the program logged as warnings (``pulumi.log.warn``), in order."""

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)  # with the engine's own keys (a dynamic ``__provider``)
        request, urn = self.requests.pop((args.typ, args.name), (None, ""))
        timeouts = getattr(request, "customTimeouts", None)
        self.resources.append(
            Declared(
                type=args.typ,
                name=args.name,
                inputs=inputs,
                urn=urn,
                parent=(getattr(request, "parent", "") or None),
                provider=args.provider or None,
                dependencies=tuple(getattr(request, "dependencies", ())),
                delete_before_replace=_delete_before_replace(request),
                protect=bool(getattr(request, "protect", False)),
                import_id=(getattr(request, "importId", "") or None),
                aliases=_alias_names(request, args.name),
                custom_timeouts={
                    k: getattr(timeouts, k)
                    for k in ("create", "update", "delete")
                    if timeouts is not None and getattr(timeouts, k)
                },
                wire=_wire(request),
            )
        )
        return f"{args.name}-id", computed_outputs(args.typ, args.name, inputs)

    # Pulumi's mock monitor iterates a returned failures list without a None check: a plain
    # dict (no failures) is what works.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.calls.append((args.token, dict(args.args)))
        return dict(CALLS.get(args.token, {}))

    def of_type(self, type_token: str) -> list[Declared]:
        """Every declared resource of one type token."""
        return [r for r in self.resources if r.type == type_token]

    @property
    def by_name(self) -> dict[str, Declared]:
        """Declared resources by name."""
        return {r.name: r for r in self.resources}

    def one(self, type_token: str) -> Declared:
        """The single declared resource of ``type_token`` (fails if there are 0 or several)."""
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
        return found[0]


def _wire(request: Any) -> dict[str, Any]:
    if request is None:
        return {}
    from google.protobuf.json_format import MessageToDict

    wire: dict[str, Any] = MessageToDict(request.object)
    return wire


def _alias_names(request: Any, name: str) -> tuple[str, ...]:
    """The former names in a registration's ``aliases`` (alias specs, as Pulumi's SDK sends
    them to a monitor that supports them, or URNs). Aliases of another type under the same
    name (pulumi-kubernetes declares its resources' older API versions so) are no renames."""
    names = []
    for alias in getattr(request, "aliases", ()):
        former = alias.spec.name if alias.HasField("spec") else alias.urn.rsplit("::", 1)[-1]
        if former and former != name:
            names.append(former)
    return tuple(dict.fromkeys(names))


def _delete_before_replace(request: Any) -> bool | None:
    if request is None or not getattr(request, "deleteBeforeReplaceDefined", False):
        return None
    return bool(request.deleteBeforeReplace)


class _Warnings(logging.Handler):
    """Pulumi's mock engine logs ``pulumi.log`` messages to a logger: keep the warnings."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record.getMessage())


class RecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, handing each registration request (and its URN) to the mocks."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self._recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (Pulumi's name)
        urn = self.make_urn(request.parent, request.type, request.name)
        self._recording.requests[(request.type, request.name)] = (request, urn)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


@contextmanager
def mocked(
    mocks: RecordingMocks, *, stack: str = "test", project: str = PROJECT
) -> Iterator[asyncio.AbstractEventLoop]:
    """Install ``mocks`` for one program run, on a fresh event loop (Pulumi's runtime state
    leaks between runs otherwise); the loop is closed and the config cleared afterwards.

    A program run inside must run to completion (``@pulumi.runtime.test``, or wait for its
    RPCs): a pending RPC left behind breaks the next run ("attached to a different loop").
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    logger = logging.getLogger(f"ml-endpoints.mocks.{id(mocks)}")
    logger.propagate = False
    logger.handlers = [_Warnings(mocks.warnings)]
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        logger=logger,
        monitor=RecordingMonitor(mocks),
    )
    try:
        yield loop
    finally:
        pulumi.runtime.set_all_config({}, [])  # secret keys too: they outlive the config
        loop.close()
        asyncio.set_event_loop(None)
