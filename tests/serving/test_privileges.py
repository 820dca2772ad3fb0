"""Start as root only to read the model, then serve unprivileged (``serving.privileges``).

SageMaker may unpack ``model.tar.gz`` as root-owned files of mode 0600 (issue 16): the server
must still load them, and must not serve requests as root. These tests chown files and change
uids, which needs root (as CI and the development machines run)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.privileges import ServingUser, can_read, drop_to, give_to, stage
from tests.serving.image.podman import IMAGE, running

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown and setuid")

USER = ServingUser(10001, 10001)


def test_parse() -> None:
    assert ServingUser.parse("10001") == ServingUser(10001, 10001)
    assert ServingUser.parse("10001:20") == ServingUser(10001, 20)
    for bad in ("0", "10001:0", "app", ""):
        with pytest.raises(ValueError, match="serving user"):
            ServingUser.parse(bad)


def _root_file(path: Path, mode: int, content: bytes = b"model") -> Path:
    path.write_bytes(content)
    os.chown(path, 0, 0)
    path.chmod(mode)
    return path


def test_can_read_follows_the_permission_bits(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    assert can_read(_root_file(tmp_path / "open", 0o644), USER)
    assert not can_read(_root_file(tmp_path / "private", 0o600), USER)
    mine = _root_file(tmp_path / "mine", 0o600)
    os.chown(mine, USER.uid, USER.gid)
    assert can_read(mine, USER)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    _root_file(closed / "model.joblib", 0o644)
    assert not can_read(closed, USER)  # the directory cannot be entered
    opened = tmp_path / "opened"
    opened.mkdir(mode=0o755)
    _root_file(opened / "model.joblib", 0o644)
    _root_file(opened / "secret.json", 0o600)
    assert not can_read(opened, USER)  # one file in it is unreadable


def test_stage_copies_an_unreadable_model_privately(tmp_path: Path) -> None:
    source = tmp_path / "opt-ml-model"
    source.mkdir(mode=0o700)
    _root_file(source / "xgboost-model", 0o600, b"booster bytes")
    (source / "code").mkdir()
    _root_file(source / "code" / "inference.py", 0o600, b"def model_fn(d): ...")
    cache = tmp_path / "cache"

    staged = stage(source, cache, USER)

    assert staged.parent == cache
    assert staged.name.startswith("staged-model-")
    assert (staged / "xgboost-model").read_bytes() == b"booster bytes"
    assert (staged / "code" / "inference.py").read_bytes() == b"def model_fn(d): ..."
    for path in [staged, *staged.rglob("*")]:
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (USER.uid, USER.gid)
        assert stat.S_IMODE(info.st_mode) == (0o700 if path.is_dir() else 0o600)
    assert can_read(staged, USER)
    assert stage(source, cache, USER) == staged  # a restart reuses the same place


def test_stage_of_a_single_file(tmp_path: Path) -> None:
    model = _root_file(tmp_path / "model.bst", 0o600, b"bst")
    staged = stage(model, tmp_path / "cache", USER)
    assert staged.name == "model.bst"
    assert staged.read_bytes() == b"bst"
    assert staged.stat().st_uid == USER.uid


def test_stage_leaves_a_readable_model_where_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    model = _root_file(tmp_path / "model.joblib", 0o644)
    assert stage(model, tmp_path / "cache", USER) == model
    assert not (tmp_path / "cache").exists()


def test_give_to_hands_over_a_tree(tmp_path: Path) -> None:
    tree = tmp_path / "metrics"
    tree.mkdir()
    _root_file(tree / "counter_1.db", 0o644)
    give_to(tree, USER)
    assert {p.stat().st_uid for p in [tree, *tree.iterdir()]} == {USER.uid}


def test_drop_to_gives_up_root_for_good() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop, then try to get root back
        os.close(read)
        try:
            drop_to(USER)
            try:
                os.setuid(0)
                regained = "regained"
            except PermissionError:
                regained = "refused"
            ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups())
            report = " ".join(map(str, ids)) + f" {regained}"
        except BaseException as exc:  # report anything to the parent
            report = repr(exc)
        os.write(write, report.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    assert report == "10001 10001 10001 10001 [] refused"


# -- the image, run as the platforms run it ---------------------------------------------------


def _process_users(podman: Any, name: str) -> set[str]:
    """The uids of every process in the container (``podman top``'s ``huser``: host uids)."""
    listing = podman("top", name, "huser", "comm").stdout.splitlines()[1:]
    return {line.split()[0] for line in listing if line.strip()}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_image_as_root_loads_a_root_only_model_and_serves_unprivileged(
    podman: Any, tmp_path: Path
) -> None:
    """As SageMaker runs it: root, ``/opt/ml/model`` holding root-owned 0600 files. The answers
    are the root-only model's (a gradient-boosted model whose labels differ from the bundled
    logistic-regression demo's on these rows), not another model's."""
    import joblib

    from serving.demo import build_demo_model, demo_data, write_demo_artifacts

    model_dir = write_demo_artifacts(tmp_path / "model", "hgb")
    rows = demo_data()[0]
    expected = joblib.load(model_dir / "model.joblib").predict(rows).tolist()
    assert expected != build_demo_model("logreg").predict(rows).tolist()
    model_dir.chmod(0o700)
    for path in model_dir.iterdir():
        os.chown(path, 0, 0)
        path.chmod(0o600)
    with running(
        podman,
        IMAGE,
        "serve",
        env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
        run_options=["--volume", f"{model_dir}:/opt/ml/model:ro"],
    ) as container:
        response = httpx.post(
            container.url + "/invocations",
            json={"instances": rows.tolist()},
            timeout=30,
        )
        assert response.status_code == 200, container.logs()
        assert response.json() == expected  # SageMaker's default JSON answer: a bare list
        users = _process_users(podman, container.name)
    assert users == {"10001"}, users  # PID 1 (the supervisor) and both workers


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_image_as_kubernetes_runs_it_non_root_and_read_only(podman: Any) -> None:
    """``runAsUser: 10001``, ``readOnlyRootFilesystem`` with an emptyDir on /tmp (infra/k8s)."""
    with running(
        podman,
        IMAGE,
        "serve",
        run_options=[
            "--user",
            "10001:10001",
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            "/tmp",
        ],
    ) as container:
        response = httpx.post(container.url + "/predict", json={"features": [0.0] * 30}, timeout=10)
        assert response.status_code == 200, container.logs()
        assert _process_users(podman, container.name) == {"10001"}
