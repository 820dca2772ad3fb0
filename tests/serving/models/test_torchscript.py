"""TorchScript models (``model.pt``) on the CPU, loaded from disk and served over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from serving.models.loader import load_model

# torch 2.13 deprecates TorchScript in favour of torch.export; it still loads and runs.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)


class TinyClassifier(torch.nn.Module):
    """Four features in, two class probabilities out; fixed weights."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, 0.0, 0.5]]))
            self.linear.bias.copy_(torch.tensor([0.1, -0.1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=1)


class PairOutput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


ROWS = np.array([[0.0, 1.0, 2.0, 3.0], [1.5, -2.0, 0.25, 4.0], [0.0, 0.0, 0.0, 0.0]])


def _expected(rows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(TinyClassifier()(torch.from_numpy(rows.astype(np.float32))).numpy())


@pytest.fixture
def scripted(tmp_path: Path) -> Path:
    torch.jit.script(TinyClassifier()).save(str(tmp_path / "model.pt"))
    (tmp_path / "input_example.json").write_text(json.dumps({"instances": ROWS[:1].tolist()}))
    return tmp_path


def test_scripted_module_predicts_as_in_torch(scripted: Path) -> None:
    model = load_model(scripted)
    assert model.format == "torchscript"
    prediction = model.predict(ROWS)
    assert prediction.outputs.dtype == np.float32
    np.testing.assert_allclose(prediction.outputs, _expected(ROWS), rtol=0, atol=1e-7)


def test_module_returning_a_tuple_is_reported(tmp_path: Path) -> None:
    torch.jit.script(PairOutput()).save(str(tmp_path / "model.pt"))
    with pytest.raises(TypeError, match="the module returned a tuple, not one tensor"):
        load_model(tmp_path / "model.pt").predict(ROWS)


def test_server_serves_the_scripted_module(
    scripted: Path, start_server: Callable[..., Any]
) -> None:
    server = start_server("--model", str(scripted), env={"ML_ENDPOINTS_DRAIN_SECONDS": "0"})
    response = httpx.post(
        server.url + "/invocations",
        content="\n".join(",".join(str(v) for v in row) for row in ROWS),
        headers={"content-type": "text/csv"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json()), _expected(ROWS), rtol=0, atol=1e-6)
