"""Tree ensembles side by side (issue 16): ``python -m bench.trees``.

Same machine, same run: our server on the logistic-regression demo (the reference), on a
scikit-learn ``HistGradientBoostingClassifier`` (``model.joblib``), an XGBoost classifier
(``xgboost-model``, native JSON, as SageMaker names it) and a LightGBM classifier (``model.txt``),
all trained on the demo data; and the SageMaker-style Flask + gunicorn XGBoost server
(``bench/baselines/sagemaker_xgboost_app.py``) on the very same ``xgboost-model``. Every server
gets the same single-row ``text/csv`` body on ``POST /invocations`` (what SageMaker clients send),
is pinned to core 0, with ``wrk`` on core 1.

Prints: the table (1, 8, 64 connections), interleaved c=64 rounds (both servers up, alternating;
this VM's speed drifts by tens of percent over minutes, so ratios are taken within a round), what
each server answers for all 569 demo rows against the library's own ``predict`` and
``predict_proba`` (exactness), and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs its model

import numpy as np

from bench import servers
from bench.run import LEVELS, Row, _level, _start_warm, measure

LOGREG, HGB, XGB, LGBM = (
    "ml-endpoints logreg demo",
    "ml-endpoints HGB",
    "ml-endpoints XGBoost",
    "ml-endpoints LightGBM",
)
FLASK = "SageMaker-style Flask + gunicorn XGBoost"
TREES = (HGB, XGB, LGBM)


def write_models(root: Path) -> dict[str, Path]:
    """The four models on the demo data, in the files the platforms' containers read."""
    import joblib
    import lightgbm
    import xgboost

    from serving.demo import build_demo_model, demo_data, write_demo_artifacts

    rows, labels, _ = demo_data()
    paths = {
        LOGREG: write_demo_artifacts(root / "logreg", "logreg"),
        HGB: root / "hgb",
        XGB: root / "xgboost",
        LGBM: root / "lightgbm",
    }
    for directory in paths.values():
        directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(build_demo_model("hgb"), paths[HGB] / "model.joblib")
    booster = xgboost.XGBClassifier(n_estimators=100, random_state=0).fit(rows, labels)
    (paths[XGB] / "xgboost-model").write_bytes(bytes(booster.get_booster().save_raw("json")))
    gbm = lightgbm.LGBMClassifier(n_estimators=100, random_state=0, verbose=-1).fit(rows, labels)
    gbm.booster_.save_model(str(paths[LGBM] / "model.txt"))
    for directory in paths.values():  # the same warm-up example for every server
        (directory / "input_example.json").write_text(json.dumps({"instances": rows[:2].tolist()}))
    return paths


def library_answers(label: str, path: Path, rows: np.ndarray) -> tuple[Any, Any]:
    """(labels, probabilities) from the library's own ``predict`` / ``predict_proba``."""
    import joblib
    import lightgbm
    import xgboost

    if label in (LOGREG, HGB):
        model = joblib.load(path / "model.joblib")
        return model.predict(rows), model.predict_proba(rows)
    if label == XGB:
        xgb = xgboost.XGBClassifier()
        xgb.load_model(str(path / "xgboost-model"))
        return xgb.predict(rows), xgb.predict_proba(rows)
    booster = lightgbm.Booster(model_file=str(path / "model.txt"))
    positive = booster.predict(rows)  # LGBMClassifier.predict_proba: [1 - p, p], arg-max labels
    proba = np.column_stack([1.0 - positive, positive])
    return proba.argmax(axis=1), proba


def served_answers(server: servers.Server, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Labels and probabilities for ``rows`` over the Open Inference Protocol, and the
    predictor the server chose (its model metadata's ``platform``)."""
    tensor = {
        "name": "input-0",
        "shape": list(rows.shape),
        "datatype": "FP64",
        "data": [None if v != v else v for v in rows.ravel().tolist()],  # null: missing
    }
    request = urllib.request.Request(
        server.url + "/v2/models/model/infer",
        json.dumps({"inputs": [tensor]}).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        outputs = {o["name"]: o for o in json.loads(response.read())["outputs"]}
    with urllib.request.urlopen(server.url + "/v2/models/model", timeout=30) as response:
        platform = json.loads(response.read())["platform"]
    labels = np.asarray(outputs["predict"]["data"])
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    return labels, proba, platform


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved c=64 rounds per pair")
    parser.add_argument(
        "--exactness-only",
        action="store_true",
        help="only the answers against the libraries' own (no load)",
    )
    args = parser.parse_args(argv)

    from serving.demo import demo_data

    rows = demo_data()[0]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-trees-logs-"))
    paths = write_models(servers.WORK / "models" / "trees")
    csv_row = (",".join(repr(v) for v in rows[0].tolist()) + "\n").encode()

    def ours(label: str) -> servers.Server:
        return servers.ours(
            label, paths[label], csv_row, path="/invocations", content_type="text/csv"
        )

    factories: dict[str, Callable[[], servers.Server]] = {
        label: (lambda label=label: ours(label)) for label in (LOGREG, *TREES)
    }
    factories[FLASK] = lambda: servers.sagemaker_xgboost(
        FLASK, paths[XGB] / "xgboost-model", csv_row
    )

    if args.exactness_only:
        _exactness(factories, paths, rows, log_dir)
        return 0
    print(f"server on core 0, wrk on core 1; {args.seconds:g} s per level; logs in {log_dir}\n")
    print("| server | connections | rps | p50 ms | p99 ms | errors | RSS MB | CPU us/req |")
    print("|---|---|---|---|---|---|---|---|")
    table: dict[tuple[str, int], Row] = {}
    for factory in factories.values():
        measured, _ = measure(factory(), args.seconds, LEVELS, log_dir, args.warmup)
        table.update({(r.label, r.connections): r for r in measured})

    pairs = [(LOGREG, tree) for tree in TREES] + [(FLASK, XGB)]
    ratios = {pair: _interleaved(factories, pair, args, log_dir) for pair in pairs}
    exact = _exactness(factories, paths, rows, log_dir)
    _targets(table, ratios, exact)
    return 0


def _interleaved(
    factories: dict[str, Callable[[], servers.Server]],
    pair: tuple[str, str],
    args: argparse.Namespace,
    log_dir: Path,
) -> float:
    """Median over rounds of rps(second) / rps(first) at c=64, both servers up."""
    base_label, label = pair
    print(f"\nInterleaved c=64: {label} vs {base_label}\n")
    print("| round | base rps | rps | ratio | base errors | errors |")
    print("|---|---|---|---|---|---|")
    base, server = factories[base_label](), factories[label]()
    ratios = []
    try:
        for s in (base, server):
            _start_warm(s, log_dir, args.warmup)
        for round_ in range(1, args.rounds + 1):
            (b, _), (m, _) = (_level(s, 64, args.seconds) for s in (base, server))
            ratios.append(m.rps / b.rps)
            print(
                f"| {round_} | {b.rps:,.0f} | {m.rps:,.0f} | {ratios[-1]:.2f}x | {b.errors} | "
                f"{m.errors} |",
                flush=True,
            )
    finally:
        base.stop()
        server.stop()
    return statistics.median(ratios)


def _exactness(
    factories: dict[str, Callable[[], servers.Server]],
    paths: dict[str, Path],
    rows: np.ndarray,
    log_dir: Path,
) -> dict[str, tuple[int, float]]:
    """(label mismatches, max |p - predict_proba|) per server over every demo row, plus rows
    with missing values for the trees (which take them)."""
    probe = rows.copy()
    probe[::3, ::4] = np.nan
    print(
        "\nAnswers for all demo rows (and the same rows with every 4th feature of every 3rd "
        "row missing, for the trees) against the library's own predict / predict_proba:\n"
    )
    print("| server | served by | rows | labels differing | max abs probability difference |")
    print("|---|---|---|---|---|")
    found = {}
    for label in (LOGREG, *TREES):
        data = rows if label == LOGREG else np.vstack([rows, probe])
        expected_labels, expected_proba = library_answers(label, paths[label], data)
        server = factories[label]()
        try:
            server.start(0, log_dir)
            labels, proba, platform = served_answers(server, data)
        finally:
            server.stop()
        mismatches = int(np.sum(labels != np.asarray(expected_labels)))
        worst = float(np.max(np.abs(proba - np.asarray(expected_proba, dtype=np.float64))))
        found[label] = (mismatches, worst)
        print(f"| {label} | {platform} | {len(data)} | {mismatches} | {worst:.3g} |")
    return found


def _targets(
    table: dict[tuple[str, int], Row],
    ratios: dict[tuple[str, str], float],
    exact: dict[str, tuple[int, float]],
) -> None:
    print("\nTargets of issue 16 (this run):\n")
    print("| target | table (c=64) | interleaved median | required | met |")
    print("|---|---|---|---|---|")

    def rps(label: str) -> float:
        return table[(label, 64)].result.rps

    for tree in TREES:
        need, ratio = 0.5, ratios[(LOGREG, tree)]
        print(
            f"| {tree} vs logreg demo | {rps(tree) / rps(LOGREG):.2f}x | {ratio:.2f}x | "
            f">= {need:g}x | {'yes' if ratio >= need else 'NO'} |"
        )
    ratio = ratios[(FLASK, XGB)]
    print(
        f"| {XGB} vs {FLASK} | {rps(XGB) / rps(FLASK):.2f}x | {ratio:.2f}x | >= 10x | "
        f"{'yes' if ratio >= 10 else 'NO'} |"
    )
    errors = sum(r.result.errors for r in table.values() if r.label.startswith("ml-endpoints"))
    print(f"| errors (ours, every level) | {errors} | | 0 | {'yes' if errors == 0 else 'NO'} |")
    for label in TREES:
        mismatches, worst = exact[label]
        ok = mismatches == 0 and worst <= 1e-9
        print(
            f"| {label}: labels identical, probabilities within 1e-9 | {mismatches} labels "
            f"differ, max {worst:.3g} | | 0, <= 1e-9 | {'yes' if ok else 'NO'} |"
        )


if __name__ == "__main__":
    sys.exit(main())
