"""Where the server finds its model: s3:// on moto, gs:// on the GCS emulator, archives, the
SageMaker model dir, the demo fallback; their precedence; and load-time refusals (integrity,
untrusted skops types, missing objects) reported on ``/ping``.

One moto server and one GCS emulator serve the whole module; the model servers start in
parallel.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import operator
import os
import re
import signal
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import joblib
import numpy as np
import pytest
import skops.io
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from serving.artifacts import ArtifactError, materialize
from serving.demo import build_demo_model, demo_data, write_demo_artifacts
from tests import emulators
from tests.conftest import ServerProcess
from tests.emulators import Emulator

ARCHIVE_HANDLER = """
def predict_fn(data, model):
    return model.predict_proba(data)[:, 1]
"""
VERTEX_HEALTH = "/v1/endpoints/42/deployedModels/7"
VERTEX_PREDICT = VERTEX_HEALTH + ":predict"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with emulators.moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with emulators.gcs(tmp_path_factory.mktemp("gcs")) as server:
        yield server


def _constant_model(label: str) -> bytes:
    """A joblib classifier that answers ``label`` for any 30-feature row."""
    rows = np.zeros((2, 30))
    buffer = io.BytesIO()
    joblib.dump(
        DummyClassifier(strategy="constant", constant=label).fit(rows, [label, "x"]), buffer
    )
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The demo classifier's model.joblib, model.onnx and input_example.json, as bytes."""
    out = write_demo_artifacts(tmp_path_factory.mktemp("demo"), "logreg", onnx=True)
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.fixture(scope="module")
def model_archive(demo_files: dict[str, bytes]) -> bytes:
    """A SageMaker-style model.tar.gz: the model plus ``code/inference.py``."""
    return _tar_gz(
        {
            "model.joblib": demo_files["model.joblib"],
            "code/inference.py": textwrap.dedent(ARCHIVE_HANDLER).encode(),
        }
    )


@pytest.fixture(scope="module")
def s3_objects(
    moto: Emulator, demo_files: dict[str, bytes], model_archive: bytes
) -> dict[str, bytes]:
    """Upload the artifacts every S3 scenario reads to bucket ``models``."""
    objects = {
        "single/model.joblib": demo_files["model.joblib"],
        "prefix/v1/model.joblib": demo_files["model.joblib"],
        "prefix/v1/input_example.json": demo_files["input_example.json"],
        "prefix/v1/notes/README.txt": b"trained on load_breast_cancer\n",
        "prefix/v10/model.joblib": _constant_model("wrong prefix"),
        "sm/model.tar.gz": model_archive,
    }
    s3 = boto3.client("s3", endpoint_url=moto.env["AWS_ENDPOINT_URL"], **_aws_keys(moto))
    s3.create_bucket(Bucket="models")
    for key, body in objects.items():
        s3.put_object(Bucket="models", Key=key, Body=body)
    return objects


def _aws_keys(moto: Emulator) -> dict[str, str]:
    return {
        "aws_access_key_id": moto.env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": moto.env["AWS_SECRET_ACCESS_KEY"],
        "region_name": moto.env["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def gcs_objects(gcs: Emulator, demo_files: dict[str, bytes]) -> None:
    """Upload Vertex-style artifacts (a file, and a folder as AIP_STORAGE_URI names it)."""
    from google.cloud import storage

    uploads = {
        "file/model.joblib": demo_files["model.joblib"],
        "prefix/model.onnx": demo_files["model.onnx"],
        "prefix/input_example.json": demo_files["input_example.json"],
        "precedence/model.joblib": _constant_model("aip"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", gcs.env["STORAGE_EMULATOR_HOST"])
        bucket = storage.Client().create_bucket("vertex-models")
        for name, body in uploads.items():
            bucket.blob(name).upload_from_string(body)


@pytest.fixture(scope="module")
def local_sources(
    tmp_path_factory: pytest.TempPathFactory, model_archive: bytes
) -> dict[str, Path]:
    """Local model folders for the precedence and load-refusal scenarios."""
    base = tmp_path_factory.mktemp("local-sources")
    sources = {name: base / name for name in ("model-uri", "sagemaker", "empty", "skops")}
    for path in sources.values():
        path.mkdir()
    (sources["model-uri"] / "model.joblib").write_bytes(_constant_model("model-uri"))
    (sources["sagemaker"] / "model.joblib").write_bytes(_constant_model("sagemaker"))
    rows, labels, _ = demo_data()
    untrusted = make_pipeline(
        FunctionTransformer(operator.neg), StandardScaler(), LogisticRegression(max_iter=1000)
    ).fit(rows, labels)
    skops.io.dump(untrusted, sources["skops"] / "model.skops")
    sources["archive"] = base / "model.tar.gz"
    sources["archive"].write_bytes(model_archive)
    return sources


WRONG_SHA256 = "ab" * 32


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
    moto: Emulator,
    gcs: Emulator,
    s3_objects: dict[str, bytes],
    gcs_objects: None,
    local_sources: dict[str, Path],
    model_archive: bytes,
) -> Iterator[dict[str, ServerProcess]]:
    """Every scenario's server, started in parallel; each named by what it proves."""
    # Sources are the point here: skip the pre-stop window and the ONNX compile step.
    quick = {"ML_ENDPOINTS_DRAIN_SECONDS": "0", "ML_ENDPOINTS_COMPILE": "false"}
    no_sagemaker_dir = {"ML_ENDPOINTS_SAGEMAKER_MODEL_DIR": str(local_sources["empty"])}
    s3 = {**quick, **moto.env, **no_sagemaker_dir}
    vertex = {
        **quick,
        **gcs.env,
        **no_sagemaker_dir,
        "AIP_MODE": "PREDICTION",
        "AIP_HEALTH_ROUTE": VERTEX_HEALTH,
        "AIP_PREDICT_ROUTE": VERTEX_PREDICT,
    }
    sagemaker_dir = {"ML_ENDPOINTS_SAGEMAKER_MODEL_DIR": str(local_sources["sagemaker"])}
    aip = {"AIP_STORAGE_URI": "gs://vertex-models/precedence", **gcs.env}
    archive_digest = hashlib.sha256(model_archive).hexdigest()
    scenarios: dict[str, tuple[list[str], dict[str, str]]] = {
        "s3-file": (["--model", "s3://models/single/model.joblib"], s3),
        "s3-prefix": ([], {**s3, "MODEL_URI": "s3://models/prefix/v1"}),
        "s3-archive": (
            ["--model", "s3://models/sm/model.tar.gz"],
            {**s3, "SAGEMAKER_PROGRAM": "inference.py", "MODEL_SHA256": archive_digest},
        ),
        "s3-missing": (["--model", "s3://models/nope/model.joblib"], s3),
        "gs-file": ([], {**vertex, "AIP_STORAGE_URI": "gs://vertex-models/file/model.joblib"}),
        "gs-prefix": ([], {**vertex, "AIP_STORAGE_URI": "gs://vertex-models/prefix/"}),
        "model-uri-wins": (
            [],
            {**quick, **aip, **sagemaker_dir, "MODEL_URI": str(local_sources["model-uri"])},
        ),
        "aip-beats-sagemaker": ([], {**quick, **aip, **sagemaker_dir}),
        "sagemaker-dir": ([], {**quick, **sagemaker_dir}),
        "demo-fallback": ([], {**quick, **no_sagemaker_dir}),
        "sha256-mismatch": (
            ["--model", str(local_sources["archive"])],
            {**quick, "MODEL_SHA256": WRONG_SHA256},
        ),
        "skops-untrusted": (["--model", str(local_sources["skops"])], quick),
    }
    started = {name: ServerProcess(args, env) for name, (args, env) in scenarios.items()}
    try:
        for name, server in started.items():
            server.start(tmp_path_factory.mktemp(name), wait_ready=False)
        yield started
    finally:
        running = [s for s in started.values() if s.process and s.process.poll() is None]
        for server in running:  # signal all first: they shut down in parallel
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
        for server in running:
            server.stop(timeout=15)


def _settled(server: ServerProcess, path: str = "/ping", timeout: float = 90) -> httpx.Response:
    """The health answer once loading has ended: 200 (ready) or 503 with a load failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            response = httpx.get(server.url + path, timeout=2)
            if response.status_code == 200 or "failed to load" in response.text:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server still loading after {timeout} s:\n{server.log()}")


def _ready(server: ServerProcess, path: str = "/ping") -> None:
    response = _settled(server, path)
    assert response.status_code == 200, f"{response.text}\n{server.log()}"


def _refusal(server: ServerProcess) -> str:
    response = _settled(server)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    return str(response.json()["error"])


def _invoke(server: ServerProcess, rows: np.ndarray, path: str = "/invocations") -> list[Any]:
    response = httpx.post(server.url + path, json={"instances": rows.tolist()}, timeout=10)
    assert response.status_code == 200, response.text
    document = response.json()  # SageMaker: a bare list; Vertex AI: {"predictions": [...]}
    return list(document if path == "/invocations" else document["predictions"])


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return demo_data()[0][:25]


@pytest.fixture(scope="module")
def demo_labels(rows: np.ndarray) -> list[int]:
    return [int(v) for v in build_demo_model("logreg").predict(rows)]


# -- S3 ------------------------------------------------------------------------------------------
def test_s3_object_is_served(
    servers: dict[str, ServerProcess], rows: np.ndarray, demo_labels: list[int]
) -> None:
    _ready(servers["s3-file"])
    assert _invoke(servers["s3-file"], rows) == demo_labels


def test_s3_prefix_is_served(
    servers: dict[str, ServerProcess], rows: np.ndarray, demo_labels: list[int]
) -> None:
    _ready(servers["s3-prefix"])
    assert _invoke(servers["s3-prefix"], rows) == demo_labels  # v1's model, not v10's


def test_s3_prefix_is_a_folder_not_a_string_prefix(
    moto: Emulator, s3_objects: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    for uri in ("s3://models/prefix/v1", "s3://models/prefix/v1/"):
        folder = materialize(uri, tmp_path / uri[-1])
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert files == ["input_example.json", "model.joblib", "notes/README.txt"]


def test_s3_model_tar_gz_with_its_own_inference_script(
    servers: dict[str, ServerProcess], rows: np.ndarray
) -> None:
    server = servers["s3-archive"]
    _ready(server)
    expected = build_demo_model("logreg").predict_proba(rows)[:, 1]
    np.testing.assert_allclose(_invoke(server, rows), expected)


def test_s3_missing_object_keeps_the_server_unready_and_says_why(
    servers: dict[str, ServerProcess],
) -> None:
    assert _refusal(servers["s3-missing"]) == (
        "model failed to load: ArtifactError: nothing found at s3://models/nope/model.joblib: "
        "no object named 'nope/model.joblib' and none under 'nope/model.joblib/'"
    )


def _materialize_in_child(args: tuple[str, str, dict[str, str]]) -> str:
    source, cache, env = args
    os.environ.update(env)
    return str(materialize(source, Path(cache)))


def test_concurrent_workers_download_an_s3_object_once(
    moto: Emulator, s3_objects: dict[str, bytes], tmp_path: Path
) -> None:
    # A key of its own: the module's servers load other S3 objects in the background meanwhile.
    s3 = boto3.client("s3", endpoint_url=moto.env["AWS_ENDPOINT_URL"], **_aws_keys(moto))
    s3.put_object(Bucket="models", Key="once/model.tar.gz", Body=s3_objects["sm/model.tar.gz"])
    requests_before = moto.log.read_text()
    jobs = [("s3://models/once/model.tar.gz", str(tmp_path), moto.env)] * 4
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_materialize_in_child, jobs)
    assert len(set(results)) == 1
    assert (Path(results[0]) / "code" / "inference.py").is_file()
    new_log = moto.log.read_text()[len(requests_before) :]
    assert len(re.findall(r'"GET /models/once/model\.tar\.gz HTTP', new_log)) == 1, new_log


def test_s3_errors_name_the_uri(
    moto: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ArtifactError, match=r"cannot download s3://no-such-bucket/m: \w+"):
        materialize("s3://no-such-bucket/m", tmp_path)


def test_s3_object_names_escaping_the_folder_are_refused(
    moto: Emulator, s3_objects: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=moto.env["AWS_ENDPOINT_URL"], **_aws_keys(moto))
    s3.put_object(Bucket="models", Key="trap/../../escaped.txt", Body=b"x")
    with pytest.raises(ArtifactError, match=r"object '\.\./\.\./escaped\.txt' under s3://"):
        materialize("s3://models/trap", tmp_path / "cache")
    assert not list(tmp_path.rglob("escaped.txt"))


# -- GCS (Vertex AI passes AIP_STORAGE_URI) --------------------------------------------------------
def test_gs_object_is_served_on_vertex_routes(
    servers: dict[str, ServerProcess], rows: np.ndarray, demo_labels: list[int]
) -> None:
    server = servers["gs-file"]
    _ready(server, VERTEX_HEALTH)
    assert _invoke(server, rows, VERTEX_PREDICT) == demo_labels


def test_gs_folder_is_served_on_vertex_routes(
    servers: dict[str, ServerProcess], rows: np.ndarray, demo_labels: list[int]
) -> None:
    server = servers["gs-prefix"]
    _ready(server, VERTEX_HEALTH)
    assert _invoke(server, rows, VERTEX_PREDICT) == demo_labels
    assert "(onnx)" in server.log()  # the folder's model.onnx, found by the loader


# -- Precedence: MODEL_URI > AIP_STORAGE_URI > SageMaker model dir > demo -----------------------
@pytest.mark.parametrize(
    ("scenario", "answer"),
    [
        ("model-uri-wins", "model-uri"),
        ("aip-beats-sagemaker", "aip"),
        ("sagemaker-dir", "sagemaker"),
    ],
)
def test_model_source_precedence(
    servers: dict[str, ServerProcess], rows: np.ndarray, scenario: str, answer: str
) -> None:
    _ready(servers[scenario])
    assert _invoke(servers[scenario], rows[:2]) == [answer, answer]


def test_demo_model_when_nothing_is_configured(
    servers: dict[str, ServerProcess], rows: np.ndarray, demo_labels: list[int]
) -> None:
    _ready(servers["demo-fallback"])
    assert _invoke(servers["demo-fallback"], rows) == demo_labels


# -- Load-time refusals ----------------------------------------------------------------------------
def test_sha256_mismatch_keeps_the_server_unready(
    servers: dict[str, ServerProcess], model_archive: bytes, local_sources: dict[str, Path]
) -> None:
    actual = hashlib.sha256(model_archive).hexdigest()
    assert _refusal(servers["sha256-mismatch"]) == (
        f"model failed to load: ArtifactError: model artifact {local_sources['archive']} failed "
        f"the integrity check: SHA-256 of the file is {actual}, expected {WRONG_SHA256} "
        "(MODEL_SHA256)"
    )


def test_untrusted_skops_types_keep_the_server_unready(servers: dict[str, ServerProcess]) -> None:
    reason = _refusal(servers["skops-untrusted"])
    assert reason == (
        "model failed to load: UntrustedModelError: model.skops holds types skops does not trust "
        "by default: _operator.neg. Review them; to load them anyway, list them in "
        "ML_ENDPOINTS_SKOPS_TRUSTED (comma-separated)"
    )


def test_server_log_says_why_it_is_unready(servers: dict[str, ServerProcess]) -> None:
    _refusal(servers["s3-missing"])
    assert "nothing found at s3://models/nope/model.joblib" in servers["s3-missing"].log()
    # a failed load cannot recover by itself: liveness fails too, so Kubernetes restarts it
    assert httpx.get(servers["s3-missing"].url + "/health/live").status_code == 503
