"""The model runtime announces the end of its load through hooks, once, on the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from serving.metrics import Metrics
from serving.runtime import ModelRuntime, State
from serving.settings import Settings


def _load(settings: Settings) -> tuple[ModelRuntime, list[tuple[str, Any]]]:
    calls: list[tuple[str, Any]] = []
    runtime = ModelRuntime(
        settings,
        Metrics("model", "1", "default"),
        on_ready=[lambda model, model_dir: calls.append(("ready", (model, model_dir)))],
        on_failed=[lambda reason: calls.append(("failed", reason))],
    )

    async def load() -> None:
        runtime.start()
        assert calls == []  # the load runs in the background
        await runtime.wait_loaded()

    asyncio.run(load())
    runtime.close()
    return runtime, calls


def test_ready_hooks_get_the_loaded_model_and_its_directory(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    runtime, calls = _load(
        Settings(model_uri=str(demo_model_dir), cache_dir=str(tmp_path), compile=False)
    )
    assert runtime.state is State.READY
    assert calls == [("ready", (runtime.model, demo_model_dir))]


def test_failed_hooks_get_the_reason(tmp_path: Path) -> None:
    runtime, calls = _load(
        Settings(model_uri=str(tmp_path / "missing"), cache_dir=str(tmp_path / "cache"))
    )
    assert runtime.state is State.FAILED
    assert calls == [("failed", runtime.reason)]
    assert "model failed to load" in runtime.reason


def test_a_failing_hook_neither_stops_the_others_nor_the_worker(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    seen: list[str] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("bug in a hook")

    runtime = ModelRuntime(
        Settings(model_uri=str(demo_model_dir), cache_dir=str(tmp_path), compile=False),
        Metrics("model", "1", "default"),
        on_ready=[broken, lambda *_: seen.append("second")],
    )

    async def load() -> None:
        runtime.start()
        await runtime.wait_loaded()

    asyncio.run(load())
    runtime.close()
    assert runtime.state is State.READY
    assert seen == ["second"]
