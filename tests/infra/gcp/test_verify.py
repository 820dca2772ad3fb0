"""``verify_vertex`` against the fake Vertex AI API, and the uploaded container spec against the
real server: what Vertex would call, the server answers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.gcp.config import VertexEndpointArgs, vertex_args_from_config
from infra.gcp.verify import verify_stack, verify_vertex
from infra.gcp.vertex import deployment_props
from infra.gcp.vertex_provider import VertexDeploymentProvider
from infra.stack.components import Components
from infra.validation import ConfigError
from tests.conftest import ServerProcess, free_port
from tests.infra.gcp.conftest import IMAGE, IMAGE_V2, SERVICE_ACCOUNT, vertex_args, vertex_config
from tests.infra.gcp.fake_vertex import FakeVertex

ROWS = [[0.1, 0.2], [0.3, 0.4]]


def deploy(args: VertexEndpointArgs, endpoint: str) -> dict[str, Any]:
    """Create the deployment with the provider, as `pulumi up` would."""
    props = deployment_props(args, endpoint, SERVICE_ACCOUNT)
    return dict(VertexDeploymentProvider().create(props).outs or {})


def split(fake: FakeVertex, champion: int, challenger: int, **more: Any) -> VertexEndpointArgs:
    return vertex_args(fake, traffic={"champion": champion, "challenger": challenger}, **more)


def test_a_deployment_that_matches_its_config_passes(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    args = split(fake_vertex, 90, 10)
    deploy(args, endpoint_name)
    mark = len(fake_vertex.calls)

    assert verify_vertex(args, instances=ROWS) == []

    predictions = fake_vertex.methods("predict")
    assert 2 <= len(predictions) <= 10, "stops once both variants have answered"
    assert set(fake_vertex.methods()[mark:]) == {"getEndpoint", "getModel", "predict"}


def test_found_by_display_name_without_an_endpoint_id(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    deploy(split(fake_vertex, 100, 0), endpoint_name)
    args = split(fake_vertex, 100, 0, endpoint_id=None)
    assert verify_vertex(args, instances=ROWS) == []

    unnamed = split(fake_vertex, 100, 0, endpoint_id=None, display_name="other")
    assert verify_vertex(unnamed, instances=ROWS) == [
        "projects/ml-project/locations/us-central1: 0 endpoints named 'other', "
        "expected 1 (set vertex.endpoint_id to pick one)"
    ]


def test_traffic_drift_is_reported_by_variant_name(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    args = split(fake_vertex, 90, 10)
    deploy(args, endpoint_name)
    live = fake_vertex.endpoints[endpoint_name]["trafficSplit"]
    for deployed_id in live:  # someone moved all traffic to one model by hand
        live[deployed_id] = 100 if live[deployed_id] == 90 else 0

    assert verify_vertex(args, instances=ROWS) == [
        f"{endpoint_name}: traffic split is {{'champion': 100}}, "
        "config says {'champion': 90, 'challenger': 10}"
    ]


def test_missing_extra_and_stale_deployments_are_reported(
    fake_vertex: FakeVertex, endpoint_name: str
) -> None:
    deploy(split(fake_vertex, 100, 0), endpoint_name)
    config = vertex_config(traffic={"champion": 100, "newcomer": 0})
    config["variants"][0]["image"] = IMAGE_V2
    config["variants"][1]["name"] = "newcomer"

    failures = verify_vertex(vertex_args(fake_vertex, **config), instances=ROWS)

    stray = next(
        d["id"]
        for d in fake_vertex.endpoints[endpoint_name]["deployedModels"]
        if d["displayName"] == "challenger"
    )
    assert failures == [
        f"{endpoint_name}/champion: runs {IMAGE}, config says {IMAGE_V2}",
        f"{endpoint_name}/newcomer: not deployed",
        f"{endpoint_name}/challenger: deployed ({stray}), not in config",
    ]


def test_unknown_endpoint_is_a_failure_not_a_crash(fake_vertex: FakeVertex) -> None:
    failures = verify_vertex(vertex_args(fake_vertex, endpoint_id="999"), instances=ROWS)
    assert len(failures) == 1
    assert failures[0].startswith(
        "projects/ml-project/locations/us-central1: cannot read the endpoint: 404"
    )
    assert "endpoints/999" in failures[0]


def test_failing_predictions_are_reported(fake_vertex: FakeVertex, endpoint_name: str) -> None:
    args = split(fake_vertex, 100, 0)
    deploy(args, endpoint_name)
    fake_vertex.backends[IMAGE] = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    failures = verify_vertex(args, instances=ROWS)

    assert len(failures) == 1
    assert failures[0].startswith(f"{endpoint_name}: prediction failed: 503")
    assert "model server unreachable" in failures[0]


@pytest.fixture
def vertex_like_server(
    start_server: Callable[..., ServerProcess], fake_vertex: FakeVertex, endpoint_name: str
) -> tuple[VertexEndpointArgs, ServerProcess]:
    """Deploy one variant, then run the real server with the environment Vertex AI would give
    it from the uploaded model (AIP_* from its container spec, plus the spec's own env)."""
    config = vertex_config(traffic={"champion": 100})
    config["variants"] = config["variants"][:1]
    args = vertex_args(fake_vertex, **config)
    outs = deploy(args, endpoint_name)
    model = fake_vertex.models[outs["deployed"]["champion"]["model"]]
    spec = model["containerSpec"]
    env = {e["name"]: e["value"] for e in spec["env"]}
    env.update(
        AIP_MODE="PREDICTION",
        AIP_HTTP_PORT=str(spec["ports"][0]["containerPort"]),
        AIP_PREDICT_ROUTE=spec["predictRoute"],
        AIP_HEALTH_ROUTE=spec["healthRoute"],
        ML_ENDPOINTS_DRAIN_SECONDS="0",  # test speed only: no pre-stop window on teardown
    )
    server = start_server(env=env, wait_ready=True)
    fake_vertex.backends[IMAGE] = server.url
    return args, server


def test_the_real_server_answers_where_the_container_spec_says(
    vertex_like_server: tuple[VertexEndpointArgs, ServerProcess],
    demo_rows: list[list[float]],
    fake_vertex: FakeVertex,
) -> None:
    args, server = vertex_like_server
    spec = next(iter(fake_vertex.models.values()))["containerSpec"]
    assert httpx.get(server.url + spec["healthRoute"], timeout=5).status_code == 200

    assert verify_vertex(args, instances=demo_rows[:3]) == []

    metrics = httpx.get(server.url + "/metrics", timeout=5).text
    assert 'variant="champion"' in metrics


def test_the_cli_entry_point_reports_every_check_from_the_stack_config(
    fake_vertex: FakeVertex, endpoint_name: str, tmp_path: Path
) -> None:
    (tmp_path / "sample.json").write_text(json.dumps({"instances": ROWS}))
    config = vertex_config(api_endpoint=fake_vertex.url, sample={"file": "sample.json"})
    deploy(vertex_args_from_config(config), endpoint_name)

    findings = verify_stack(Components(vertex=vertex_args_from_config(config)), {}, tmp_path)

    assert findings is not None
    assert [(f.subject, f.ok) for f in findings] == [
        (f"{endpoint_name}/champion", True),
        (f"{endpoint_name}/challenger", True),
        (endpoint_name, True),
        (f"{endpoint_name}/champion", True),
        (f"{endpoint_name}/challenger", True),
    ]
    assert findings[3].detail == "2 predictions for 2 instances"
    assert findings[4].detail.startswith("0% of the traffic: not invoked")


def test_the_cli_entry_point_skips_stacks_without_vertex_and_needs_a_sample(
    tmp_path: Path,
) -> None:
    def verify(**overrides: Any) -> Any:
        components = Components(vertex=vertex_args_from_config(vertex_config(**overrides)))
        return verify_stack(components, {}, tmp_path)

    assert verify_stack(Components(), {}, tmp_path) is None
    with pytest.raises(ConfigError) as error:
        verify()
    assert error.value.key == "ml-endpoints:vertex.sample"
    with pytest.raises(ConfigError) as error:
        verify(sample={"file": "x.json"})
    assert error.value.key == "ml-endpoints:vertex.sample.file"
    assert "cannot read" in str(error.value)
    with pytest.raises(ConfigError) as error:
        verify(sample={"instances": ROWS, "file": "x"})
    assert error.value.key == "vertex.sample"
    assert "exactly one of instances or file" in str(error.value)


def test_verify_imports_without_pulumi() -> None:
    code = (
        "import sys; sys.modules['pulumi'] = sys.modules['pulumi_gcp'] = None; "
        "import infra.gcp.verify"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
