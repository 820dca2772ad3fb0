"""The shared Pulumi mocks, plus the outputs cloud clusters report once created (endpoint, CA,
OIDC issuer, service account e-mail) that the components read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from tests.infra.conftest import RecordingMocks

OIDC_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
CLUSTER_OUTPUTS: dict[str, dict[str, Any]] = {
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


class ClusterMocks(RecordingMocks):
    """Recording mocks that also return what the clouds compute for clusters and accounts."""

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        outputs.update(CLUSTER_OUTPUTS.get(args.typ, {}))
        if args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = (
                f"{args.inputs['accountId']}@{args.inputs['project']}.iam.gserviceaccount.com"
            )
            outputs["name"] = (
                f"projects/{args.inputs['project']}/serviceAccounts/{outputs['email']}"
            )
        return resource_id, outputs


@pytest.fixture
def pulumi_mocks() -> Iterator[ClusterMocks]:
    """Fresh cluster-aware mocks and event loop per test."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = ClusterMocks()
    pulumi.runtime.set_mocks(mocks, project="ml-endpoints", stack="test", preview=False)
    yield mocks
    loop.close()
    asyncio.set_event_loop(None)
