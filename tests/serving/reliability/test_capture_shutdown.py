"""Data capture under SIGTERM: every row the server answered under load is on disk as one JSON
Lines record once the process has exited (records written == rows accepted)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ServerProcess
from tests.serving.reliability.loadgen import closed_loop, http_request, in_background
from tests.serving.reliability.observe import metrics, wait_for

ROWS_PER_REQUEST = 3


def test_every_captured_record_is_on_disk_after_sigterm(
    start_server: Callable[..., ServerProcess], demo_rows: list[list[float]], tmp_path: Path
) -> None:
    workers = 2  # the supervisor's path: every worker flushes its own records
    destination = tmp_path / "capture"
    server = start_server(
        "--workers",
        str(workers),
        env={
            "ML_ENDPOINTS_CAPTURE_DESTINATION": str(destination),
            "ML_ENDPOINTS_CAPTURE_MAX_FILE_BYTES": "65536",  # rotate often while loaded
            "ML_ENDPOINTS_DRAIN_SECONDS": "1",
            "ML_ENDPOINTS_LOG_LEVEL": "warning",
        },
    )
    wait_for(lambda: metrics(server)["model_server_workers"] == workers, 30, "workers up")
    wait_for(lambda: metrics(server)["model_ready"] == 1, 30, "every worker ready")
    body = json.dumps({"instances": demo_rows[:ROWS_PER_REQUEST]}).encode()
    stop = threading.Event()
    load = in_background(
        lambda: closed_loop(
            server.port, http_request("/invocations", body), connections=8, seconds=30, stop=stop
        )
    )
    time.sleep(1.5)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(30)
    stop.set()
    outcomes = load(15)

    problems = [line for line in server.log().splitlines() if " ERROR " in line]
    assert code == 0, problems or server.log()[-3000:]
    accepted = ROWS_PER_REQUEST * sum(o.ok for o in outcomes)
    assert accepted > 300
    files = sorted(destination.rglob("*.jsonl"))
    records = [json.loads(line) for path in files for line in path.read_bytes().splitlines()]
    assert len(records) == accepted, f"{len(records)} records on disk for {accepted} rows"
    inputs = {r["captureData"]["endpointInput"]["data"] for r in records}
    assert inputs == {",".join(repr(v) for v in row) for row in demo_rows[:ROWS_PER_REQUEST]}
    assert len({r["eventMetadata"]["eventId"] for r in records}) == accepted
    print(
        f"\ncapture, {workers} worker(s): {sum(o.ok for o in outcomes)} requests answered "
        f"({accepted} rows), {len(records)} records on disk in {len(files)} files after exit {code}"
    )
