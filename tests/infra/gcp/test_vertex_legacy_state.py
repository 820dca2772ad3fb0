"""Stacks deployed by older code keep working: Pulumi stores the dynamic provider pickled **by
reference** (``pulumi/dynamic/dynamic.py`` ``serialize_provider``: dill pickles an importable class
as module + name), and runs ``read`` and ``delete`` of the *current* code on the *old* state.

``data/vertex_state_cf8f07d.json`` was written by running ``VertexDeploymentProvider.create`` of
commit cf8f07d against this fake (two variants, 90/10): the exact provider string Pulumi keeps in
the state (``__provider``), the outputs it recorded, and the cloud it left. If the module or class
moves, or the state's shape stops being understood, these tests fail.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import dill
import pytest

from tests.infra.gcp.fake_vertex import FakeVertex

STATE = Path(__file__).parent / "data" / "vertex_state_cf8f07d.json"


@pytest.fixture
def legacy(fake_vertex: FakeVertex) -> tuple[Any, str, dict[str, Any]]:
    """(the unpickled provider, resource id, old outputs pointed at the fake)."""
    recorded = json.loads(STATE.read_text())
    fake_vertex.restore(recorded["cloud"]["endpoints"], recorded["cloud"]["models"])
    provider = dill.loads(base64.b64decode(recorded["provider"]))
    outputs = json.loads(
        json.dumps(recorded["outputs"]).replace("http://FAKE_VERTEX", fake_vertex.url)
    )
    return provider, recorded["id"], outputs


def test_the_provider_is_still_found_where_old_states_point(
    legacy: tuple[Any, str, dict[str, Any]],
) -> None:
    provider, _, _ = legacy
    assert type(provider).__module__ == "infra.gcp.vertex_provider"
    assert type(provider).__name__ == "VertexDeploymentProvider"


def test_an_old_state_still_refreshes(
    legacy: tuple[Any, str, dict[str, Any]], fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    provider, resource_id, outputs = legacy
    refreshed = provider.read(resource_id, outputs)
    assert refreshed.id == resource_id
    assert set(refreshed.outs["deployed"]) == {"champion", "challenger"}
    assert refreshed.outs["traffic"] == {"champion": 90, "challenger": 10}
    assert fake_vertex.split_by_name(endpoint_name) == {"champion": 90, "challenger": 10}


def test_an_old_state_still_deletes(
    legacy: tuple[Any, str, dict[str, Any]], fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    provider, resource_id, outputs = legacy
    provider.delete(resource_id, outputs)
    assert fake_vertex.endpoints[endpoint_name]["deployedModels"] == []
    assert fake_vertex.models == {}
