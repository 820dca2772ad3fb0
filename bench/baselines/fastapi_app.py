"""The classic FastAPI model server, as most teams write it first (the seed-style baseline).

pydantic request body, ``predict_proba`` per request, no batching. Run with
``MODEL_PATH=model.joblib uvicorn bench.baselines.fastapi_app:app``.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()
model = joblib.load(os.environ["MODEL_PATH"])


class PredictRequest(BaseModel):
    features: list[float]


class PredictResponse(BaseModel):
    prediction: int
    confidence: float


@app.get("/health")
def health() -> dict[str, object]:
    return {"status": "healthy", "model_loaded": model is not None}


@app.post("/predict", response_model=PredictResponse)
def predict(request: PredictRequest) -> PredictResponse:
    try:
        probabilities = model.predict_proba(np.array([request.features]))[0]
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    label = int(np.argmax(probabilities))
    return PredictResponse(
        prediction=int(model.classes_[label]), confidence=float(probabilities[label])
    )
