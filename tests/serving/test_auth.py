"""Optional token authentication: API routes closed, platform routes and probes open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, ServerProcess

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    tmp = tmp_path_factory.mktemp("auth")
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    proc = ServerProcess([], {"ML_ENDPOINTS_AUTH_TOKEN_FILE": str(token_file)}).start(tmp)
    yield proc
    proc.stop()


def predict(server: ServerProcess, headers: dict[str, str], row: list[float]) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json={"features": row}, headers=headers)


def test_api_routes_need_the_token(server: ServerProcess, demo_rows: list[list[float]]) -> None:
    missing = predict(server, {}, demo_rows[0])
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]
    wrong = predict(server, {"Authorization": f"Bearer {TOKEN}x"}, demo_rows[0])
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid credentials"}
    assert httpx.get(f"{server.url}/v2/models/model").status_code == 401


def test_bearer_and_api_key_are_accepted(
    server: ServerProcess, demo_rows: list[list[float]]
) -> None:
    assert predict(server, {"Authorization": f"Bearer {TOKEN}"}, demo_rows[0]).status_code == 200
    assert predict(server, {"X-API-Key": TOKEN}, demo_rows[0]).status_code == 200


def test_platform_routes_probes_and_metrics_stay_open(
    server: ServerProcess, demo_rows: list[list[float]]
) -> None:
    assert (
        httpx.post(f"{server.url}/invocations", json={"instances": demo_rows[:1]}).status_code
        == 200
    )
    for path in ("/ping", "/health/ready", "/health/live", "/v2/health/ready", "/metrics"):
        assert httpx.get(server.url + path).status_code == 200, path


def test_probes_can_be_closed_too(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = start_server(
        env={
            "ML_ENDPOINTS_AUTH_TOKEN": TOKEN,
            "ML_ENDPOINTS_AUTH_HEALTH": "true",
            "ML_ENDPOINTS_AUTH_METRICS": "true",
        },
        wait_ready=False,
    )
    proc.wait_ready(path="/ping")  # SageMaker's probe stays open whatever the setting
    assert httpx.get(f"{proc.url}/health/ready").status_code == 401
    assert httpx.get(f"{proc.url}/metrics").status_code == 401
    assert httpx.get(f"{proc.url}/metrics", headers={"X-API-Key": TOKEN}).status_code == 200


def test_a_short_token_is_refused_at_start() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving", "serve", "--port", "1"],
        env={"ML_ENDPOINTS_AUTH_TOKEN": "short", "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "at least 16 characters" in done.stderr
