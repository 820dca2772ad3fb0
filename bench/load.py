"""Drive a server with ``wrk`` pinned to its own core and read latency percentiles."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
_RESULT = re.compile(r"RESULT (.*)")


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput, latency percentiles (ms) and failed requests."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_wrk(
    url: str,
    path: str,
    body: bytes,
    *,
    connections: int,
    seconds: float,
    core: int,
    content_type: str = "application/json",
) -> LoadResult:
    """``wrk -t1 -cN`` POSTing ``body`` to ``url + path`` for ``seconds``."""
    with tempfile.NamedTemporaryFile(suffix=".body") as body_file:
        body_file.write(body)
        body_file.flush()
        completed = subprocess.run(
            [
                "taskset",
                "-c",
                str(core),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(SCRIPT),
                url,
            ],
            env={
                "WRK_BODY_FILE": body_file.name,
                "WRK_PATH": path,
                "WRK_CONTENT_TYPE": content_type,
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    found = _RESULT.search(completed.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    fields = dict(item.split("=") for item in found.group(1).split())
    values = {k: int(v) for k, v in fields.items()}
    errors = sum(values[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    return LoadResult(
        requests=values["requests"],
        rps=values["requests"] / (values["duration_us"] / 1e6),
        p50_ms=values["p50_us"] / 1e3,
        p99_ms=values["p99_us"] / 1e3,
        errors=errors,
    )
