"""User inference scripts in SageMaker's convention, loaded directly and served over HTTP."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest

from serving.demo import build_demo_model, demo_data
from serving.models.handler import load_handler
from serving.models.loader import load_model
from tests.conftest import ServerProcess

MODEL_FN_ONLY = """
import joblib

def model_fn(model_dir):
    return joblib.load(f"{model_dir}/classifier.bin")
"""

PREDICT_FN_ONLY = """
def predict_fn(data, model):
    if data[0][0] == -999:
        raise RuntimeError("sentinel row")
    return model.predict_proba(data)[:, 1]
"""

CUSTOM_IO = """
import numpy as np

def input_fn(body, content_type):
    if content_type != "application/x-custom":
        raise ValueError(f"expected application/x-custom, got {content_type}")
    text = body.decode()
    if text.startswith("bad"):
        raise ValueError(f"cannot parse row 0: {text[:3]!r}")
    return np.array([[float(v) for v in row.split()] for row in text.split(";")])

def predict_fn(data, model):
    if data[0][0] < 0:
        raise RuntimeError("negative radius")
    return model.predict(data)

def output_fn(prediction, accept):
    return "labels=" + ",".join(str(v) for v in prediction), "application/x-custom"
"""


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(textwrap.dedent(text))
    return directory


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """Three servers started in parallel, one per handler style."""
    estimator = build_demo_model("logreg")
    base = tmp_path_factory.mktemp("handlers")
    model_fn_dir = _write(base / "model-fn", {"code/inference.py": MODEL_FN_ONLY})
    joblib.dump(estimator, model_fn_dir / "classifier.bin")
    predict_dir = _write(base / "predict-fn", {"handler.py": PREDICT_FN_ONLY})
    custom_dir = _write(base / "custom-io", {"code/inference.py": CUSTOM_IO})
    for directory in (predict_dir, custom_dir):
        joblib.dump(estimator, directory / "model.joblib")
    quick = {"ML_ENDPOINTS_DRAIN_SECONDS": "0"}
    started = {
        "model_fn": ServerProcess(
            ["--model", str(model_fn_dir)], {**quick, "SAGEMAKER_PROGRAM": "inference.py"}
        ),
        "predict_fn": ServerProcess(
            ["--model", str(predict_dir), "--handler", str(predict_dir / "handler.py")], quick
        ),
        "custom_io": ServerProcess(
            ["--model", str(custom_dir)], {**quick, "SAGEMAKER_PROGRAM": "inference.py"}
        ),
    }
    try:
        for name, server in started.items():
            server.start(tmp_path_factory.mktemp(name), wait_ready=False)
        for server in started.values():
            server.wait_ready(timeout=60)
        yield started
    finally:
        for server in started.values():
            if server.process is not None:
                server.stop(timeout=15)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return demo_data()[0]


def test_model_fn_only_loads_the_users_file(
    servers: dict[str, ServerProcess], rows: np.ndarray
) -> None:
    response = httpx.post(
        servers["model_fn"].url + "/invocations", json={"instances": rows[:40].tolist()}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json() == build_demo_model("logreg").predict(rows[:40]).tolist()


def test_predict_fn_only_replaces_the_prediction_step(
    servers: dict[str, ServerProcess], rows: np.ndarray
) -> None:
    response = httpx.post(
        servers["predict_fn"].url + "/invocations",
        json={"instances": rows[:10].tolist()},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    expected = build_demo_model("logreg").predict_proba(rows[:10])[:, 1]
    np.testing.assert_allclose(response.json(), expected)


def test_predict_fn_failure_is_a_500_naming_it(
    servers: dict[str, ServerProcess], rows: np.ndarray
) -> None:
    sentinel = rows[0].copy()
    sentinel[0] = -999
    response = httpx.post(
        servers["predict_fn"].url + "/invocations", json={"instances": [sentinel.tolist()]}
    )
    assert response.status_code == 500
    assert response.json() == {"error": "predict_fn failed: RuntimeError: sentinel row"}


def _custom(server: ServerProcess, body: str, content_type: str) -> httpx.Response:
    return httpx.post(
        server.url + "/invocations",
        content=body,
        headers={"content-type": content_type, "accept": "application/x-custom"},
        timeout=10,
    )


def test_input_fn_and_output_fn_speak_a_custom_content_type(
    servers: dict[str, ServerProcess], rows: np.ndarray
) -> None:
    body = ";".join(" ".join(str(v) for v in row) for row in rows[:3])
    response = _custom(servers["custom_io"], body, "application/x-custom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-custom")
    labels = build_demo_model("logreg").predict(rows[:3])
    assert response.text == "labels=" + ",".join(str(v) for v in labels)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (
            "bad row",
            "application/x-custom",
            400,
            "input_fn rejected the request: ValueError: cannot parse row 0: 'bad'",
        ),
        (
            "1 2",
            "text/plain",
            400,
            "input_fn rejected the request: ValueError: expected application/x-custom, "
            "got text/plain",
        ),
        ("-1 2 3", "application/x-custom", 500, "predict_fn failed: RuntimeError: negative radius"),
    ],
    ids=["input_fn-raises", "input_fn-refuses-type", "predict_fn-raises"],
)
def test_user_step_failures_say_which_step_failed(
    servers: dict[str, ServerProcess], body: str, content_type: str, status: int, error: str
) -> None:
    response = _custom(servers["custom_io"], body, content_type)
    assert response.status_code == status
    assert response.json() == {"error": error}


def test_server_survives_user_failures(servers: dict[str, ServerProcess]) -> None:
    for server in servers.values():
        assert httpx.get(server.url + "/ping", timeout=5).status_code == 200


def test_handler_module_may_use_dataclasses(tmp_path: Path) -> None:
    script = _write(
        tmp_path,
        {
            "inference.py": """
            from __future__ import annotations
            from dataclasses import dataclass

            @dataclass
            class Scaled:
                factor: float

                def predict(self, rows):
                    return rows[:, 0] * self.factor

            def model_fn(model_dir):
                return Scaled(2.0)
            """
        },
    )
    handler = load_handler(str(script / "inference.py"), None)
    model = load_model(tmp_path, handler)
    np.testing.assert_array_equal(model.predict(np.array([[1.0], [3.0]])).outputs, [2.0, 6.0])


def test_model_fn_may_return_a_plain_torch_module(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "inference.py": """
            import torch

            class Doubler(torch.nn.Module):
                def forward(self, x):
                    return x * 2

            def model_fn(model_dir):
                return Doubler()
            """
        },
    )
    model = load_model(tmp_path, load_handler(str(tmp_path / "inference.py"), None))
    assert model.format == "torchscript"
    np.testing.assert_array_equal(model.predict(np.array([[1.5, 2.0]])).outputs, [[3.0, 4.0]])


def test_missing_handler_lists_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        load_handler("inference.py", tmp_path)
    assert str(caught.value) == (
        "handler 'inference.py' not found; tried inference.py, "
        f"{tmp_path}/code/inference.py, /opt/ml/code/inference.py"
    )


def test_handler_without_hooks_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"empty.py": "x = 1\n"})
    with pytest.raises(ValueError, match="defines none of model_fn, input_fn, predict_fn"):
        load_handler(str(tmp_path / "empty.py"), None)


def test_hook_that_is_not_callable_is_named(tmp_path: Path) -> None:
    _write(tmp_path, {"bad.py": "predict_fn = 3\n"})
    with pytest.raises(TypeError, match="predict_fn is not callable"):
        load_handler(str(tmp_path / "bad.py"), None)
