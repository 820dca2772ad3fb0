"""Local sources of :func:`serving.artifacts.materialize`: files, folders, archives, integrity.

Remote sources (s3://, gs://) run against real emulators in ``test_model_sources.py``.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from serving.artifacts import ArtifactError, materialize, sha256_of


def _tar(path: Path, members: dict[str, bytes], *, links: dict[str, str] | None = None) -> Path:
    """Write a .tar.gz with regular ``members`` and symbolic ``links`` (name -> target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def test_local_file_and_directory_are_used_in_place(tmp_path: Path) -> None:
    model = tmp_path / "model.joblib"
    model.write_bytes(b"x")
    assert materialize(str(model), tmp_path / "cache") == model
    assert materialize(f"file://{tmp_path}", tmp_path / "cache") == tmp_path


def test_missing_local_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"model path .*/nope\.joblib does not exist"):
        materialize(str(tmp_path / "nope.joblib"), tmp_path / "cache")


def test_archive_is_unpacked_once_and_reused(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "model.tar.gz", {"model.joblib": b"m", "code/inference.py": b"# hook\n"}
    )
    first = materialize(str(archive), tmp_path / "cache")
    assert (first / "model.joblib").read_bytes() == b"m"
    assert (first / "code" / "inference.py").read_bytes() == b"# hook\n"
    inode = (first / "model.joblib").stat().st_ino
    again = materialize(str(archive), tmp_path / "cache")
    assert again == first
    assert (again / "model.joblib").stat().st_ino == inode


def test_folder_holding_only_an_archive_is_unpacked(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    _tar(folder / "model.tar.gz", {"model.onnx": b"o"})
    assert (materialize(str(folder), tmp_path / "cache") / "model.onnx").read_bytes() == b"o"


@pytest.mark.parametrize(
    ("members", "links", "refusal"),
    [
        ({"../escape.txt": b"x"}, None, "OutsideDestinationError"),
        ({"model.joblib": b"m"}, {"evil": "/etc/passwd"}, "AbsoluteLinkError"),
        ({"model.joblib": b"m"}, {"evil": "../../outside"}, "LinkOutsideDestinationError"),
    ],
    ids=["dot-dot", "absolute-symlink", "symlink-outside"],
)
def test_archive_escaping_its_folder_is_refused(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None, refusal: str
) -> None:
    archive = _tar(tmp_path / "model.tar.gz", members, links=links)
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError, match=rf"refusing to unpack model\.tar\.gz: {refusal}"):
        materialize(str(archive), cache)
    assert not (tmp_path / "escape.txt").exists()
    assert not list(cache.glob("unpacked-*/")), "a refused archive must leave nothing behind"


def test_absolute_member_lands_inside_the_folder(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "model.tar.gz", {str(tmp_path / "escape.txt"): b"x"})
    unpacked = materialize(str(archive), tmp_path / "cache")
    assert not (tmp_path / "escape.txt").exists()
    assert (unpacked / str(tmp_path).lstrip("/") / "escape.txt").read_bytes() == b"x"


def test_symlink_inside_the_archive_is_kept(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "model.tar.gz",
        {"v1/model.joblib": b"m"},
        links={"model.joblib": "v1/model.joblib"},
    )
    assert (materialize(str(archive), tmp_path / "cache") / "model.joblib").read_bytes() == b"m"


def test_corrupt_archive_is_reported(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not a tar file")
    with pytest.raises(ArtifactError, match=r"refusing to unpack model\.tar\.gz: ReadError"):
        materialize(str(archive), tmp_path / "cache")


def _materialize_in_child(args: tuple[str, str]) -> tuple[str, bytes]:
    source, cache = args
    path = materialize(source, Path(cache))
    return str(path), (path / "model.joblib").read_bytes()


def test_concurrent_workers_unpack_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar(tmp_path / "model.tar.gz", {"model.joblib": b"m" * 100_000})
    log = tmp_path / "extractions.log"
    real_extractall = tarfile.TarFile.extractall

    def slow_counted_extractall(self: tarfile.TarFile, *args: Any, **kwargs: Any) -> None:
        with log.open("a") as fh:
            fh.write("extract\n")
        time.sleep(0.3)  # widen the window in which an unlocked worker would also extract
        real_extractall(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extractall", slow_counted_extractall)
    context = multiprocessing.get_context("fork")  # children inherit the counting patch
    with context.Pool(4) as pool:
        results = pool.map(_materialize_in_child, [(str(archive), str(tmp_path / "cache"))] * 4)
    assert log.read_text().splitlines() == ["extract"]
    assert len(set(results)) == 1
    assert results[0][1] == b"m" * 100_000


def test_sha256_of_a_file_is_the_plain_digest(tmp_path: Path) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"payload")
    assert sha256_of(model) == hashlib.sha256(b"payload").hexdigest()


def test_sha256_of_a_directory_matches_the_documented_shell_command(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "model.joblib").write_bytes(b"m")
    (tmp_path / "code" / "inference.py").write_bytes(b"def model_fn(d):\n    pass\n")
    (tmp_path / "input example.json").write_bytes(b"[]")
    shell = subprocess.run(
        "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sha256_of(tmp_path) == shell.stdout.split()[0]


def test_sha256_of_a_directory_sees_bytes_moved_between_files(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "a").write_bytes(b"X")
    (one / "b").write_bytes(b"Y")
    (two / "a").write_bytes(b"Xb\0Y")  # a name+content stream would hash like folder one
    assert sha256_of(one) != sha256_of(two)


def test_expected_sha256_checks_the_archive_before_unpacking(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "model.tar.gz", {"model.joblib": b"m"})
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    unpacked = materialize(str(archive), cache, expected_sha256=digest.upper())
    assert (unpacked / "model.joblib").read_bytes() == b"m"

    wrong = "0" * 64
    with pytest.raises(ArtifactError) as caught:
        materialize(str(archive), tmp_path / "cache2", expected_sha256=wrong)
    message = str(caught.value)
    assert f"SHA-256 of the file is {digest}, expected {wrong} (MODEL_SHA256)" in message
    assert not (tmp_path / "cache2").exists() or not list((tmp_path / "cache2").iterdir())


def test_expected_sha256_of_a_directory(tmp_path: Path) -> None:
    model_dir, cache = tmp_path / "model", tmp_path / "cache"
    model_dir.mkdir()
    (model_dir / "model.joblib").write_bytes(b"m")
    digest = sha256_of(model_dir)
    assert materialize(str(model_dir), cache, expected_sha256=digest) == model_dir
    with pytest.raises(ArtifactError, match=f"directory manifest is {digest}, expected 1111"):
        materialize(str(model_dir), cache, expected_sha256="1" * 64)
