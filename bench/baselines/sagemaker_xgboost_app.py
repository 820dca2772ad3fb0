"""An XGBoost server built the way SageMaker's XGBoost container serves (the issue-16 baseline).

Modelled on aws/sagemaker-xgboost-container ``algorithm_mode/serve.py`` and ``serve_utils.py``:
a Flask app under gunicorn with gevent workers (one per CPU, keep-alive 60 s), the booster loaded
once per worker with ``nthread=1``, ``POST /invocations`` with a ``text/csv`` body: the
delimiter sniffed, the rows parsed with numpy into a ``DMatrix``,
``booster.predict(validate_features=False)``, and the scores answered as CSV (the container's
default ``Accept``).

Run: ``MODEL_PATH=xgboost-model gunicorn -k gevent -w N --keep-alive 60 \
bench.baselines.sagemaker_xgboost_app:app``.
"""

from __future__ import annotations

import csv
import io
import os

import flask
import numpy as np
import xgboost as xgb

app = flask.Flask(__name__)
_booster: xgb.Booster | None = None


def booster() -> xgb.Booster:
    global _booster
    if _booster is None:
        loaded = xgb.Booster()
        loaded.load_model(os.environ["MODEL_PATH"])
        loaded.set_param("nthread", 1)
        _booster = loaded
    return _booster


def _rows(text: str) -> np.ndarray:
    delimiter = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
    delimiter = "," if delimiter.isalnum() else delimiter
    lines = [line.strip().split(delimiter) for line in text.split("\n")]
    return np.array(lines).astype(float)


@app.route("/ping", methods=["GET"])
def ping() -> flask.Response:
    booster()
    return flask.Response(status=200)


@app.route("/invocations", methods=["POST"])
def invocations() -> flask.Response:
    payload = flask.request.data
    if not payload:
        return flask.Response(response="", status=204)
    if flask.request.content_type.split(";")[0].strip().lower() != "text/csv":
        return flask.Response(response="only text/csv here", status=415)
    try:
        matrix = xgb.DMatrix(_rows(payload.strip().decode("utf-8")))
    except Exception as exc:
        return flask.Response(response=f"Loading csv data failed: {exc}", status=415)
    try:
        predictions = booster().predict(matrix, validate_features=False)
    except Exception as exc:
        return flask.Response(response=f"Unable to evaluate payload: {exc}", status=400)
    out = io.StringIO()
    np.savetxt(out, predictions.tolist(), delimiter=",", fmt="%s")
    return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")
