"""Python function calls per prediction request through ``ServingApp.respond``.

A count, not a timing: unlike rps or CPU time on this shared VM it is the same on every run, so it
shows whether a change added work to the hot path. Run it as a script (not ``-m``, which would put
the working directory first on the path), once per checkout, and compare::

    python bench/calls.py                              # this checkout's serving package
    PYTHONPATH=../before python bench/calls.py         # another checkout's

It loads the demo model (``.bench/models/logreg``, written by ``python -m bench.run``), lets the
drift monitor start, then answers ``--requests`` single-row ``POST /predict`` requests, 16 at a
time as concurrent connections would, under ``cProfile``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

WORK = Path(__file__).resolve().parent.parent / ".bench"  # as bench.servers.WORK
CONCURRENT = 16


async def _app(model: str) -> Any:
    from serving.settings import Settings

    settings = Settings(model_uri=model, cache_dir=str(WORK / "cache"), log_level="warning")
    try:
        from serving.compose import create_app
    except ImportError:  # a checkout from before serving/compose.py (issue 17)
        from serving.app import ServingApp

        app: Any = ServingApp(settings)
        app.runtime.start()
        await app.runtime.wait_loaded()
        return app
    app = create_app(settings, load_before_serving=True)
    await app.start()
    return app


async def count(model: str, requests: int) -> tuple[float, list[tuple[float, str]]]:
    """Calls per request, and the most frequent functions with their calls per request."""
    from serving.demo import demo_data

    app = await _app(model)
    await asyncio.sleep(1.5)  # the drift monitor starts
    body = json.dumps({"features": demo_data()[0][0].tolist()}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    resolved = app.direct("POST", "/predict")

    async def burst(n: int) -> None:
        for _ in range(n // CONCURRENT):
            answers = await asyncio.gather(
                *(
                    app.respond("POST", "/predict", headers, body, resolved)
                    for _ in range(CONCURRENT)
                )
            )
            assert all(a.status == 200 for a in answers), answers[0].body

    await burst(CONCURRENT * 100)  # warm
    profile = cProfile.Profile()
    profile.enable()
    await burst(requests)
    profile.disable()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    per_function = sorted(
        (
            (calls[1] / requests, f"{key[0].rsplit('/', 1)[-1]}:{key[2]}")
            for key, calls in stats.items()
        ),
        reverse=True,
    )
    return sum(calls[1] for calls in stats.values()) / requests, per_function


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=16_000)
    parser.add_argument("--top", type=int, default=25, help="functions to list")
    args = parser.parse_args(argv)
    import serving

    total, functions = asyncio.run(count(str(WORK / "models" / "logreg"), args.requests))
    print(f"serving from {os.path.dirname(serving.__file__)}")
    print(f"{total:.2f} Python calls per request over {args.requests} requests")
    for calls, name in functions[: args.top]:
        print(f"  {calls:6.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
