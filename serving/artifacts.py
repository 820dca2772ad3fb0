"""Bring a model artifact to local disk: files, directories, ``.tar.gz``, ``s3://`` and ``gs://``.

Sources:

- a local file or directory (``file://`` prefix optional);
- ``s3://bucket/key`` (boto3; honours ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and the usual
  credential chain) and ``gs://bucket/name`` (google-cloud-storage; honours
  ``STORAGE_EMULATOR_HOST`` and Application Default Credentials). When the key names an object,
  that object is fetched; otherwise the key is a folder and every object under ``key/`` is fetched
  with its relative path (so ``s3://b/v1`` never pulls ``s3://b/v10/...``);
- a ``.tar.gz``/``.tgz`` archive (SageMaker's ``model.tar.gz``), or a folder holding only one
  archive: unpacked with tarfile's ``"data"`` filter, which refuses absolute paths, members or
  links that would land outside the target, and device files.

Integrity: with ``expected_sha256`` the artifact is checked *as fetched*, before anything is
unpacked or loaded: a file or archive by its plain SHA-256 (what ``sha256sum model.tar.gz``
prints), a folder by :func:`sha256_of`'s manifest digest.

Several workers may start at once: a file lock per source makes one of them download and unpack
while the others wait and reuse the result.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


class ArtifactError(RuntimeError):
    """The model artifact could not be fetched, unpacked or verified."""


def materialize(source: str, cache_dir: Path, *, expected_sha256: str | None = None) -> Path:
    """Return a local file or directory holding the model named by ``source``.

    Raises :class:`ArtifactError` naming the source and what went wrong: nothing at that
    location, a download or unpack failure, or a SHA-256 other than ``expected_sha256``.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    if source.startswith(("s3://", "gs://")):
        fetched = _download(source, cache_dir)
    else:
        fetched = Path(source.removeprefix("file://")).expanduser()
        if not fetched.exists():
            raise ArtifactError(f"model path {fetched} does not exist")
    if expected_sha256 is not None:
        _verify(fetched, source, expected_sha256.lower())
    return _unpack_if_archive(fetched, cache_dir)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file; for a directory, the SHA-256 of its ``sha256sum`` manifest.

    The manifest has one ``<hex digest>  <relative path>\\n`` line per file, sorted by path, so
    ``cd DIR && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum |
    sha256sum`` prints the same digest. Renaming, adding, removing or moving bytes between
    files all change it.
    """
    if path.is_file():
        return file_sha256(path)
    manifest = hashlib.sha256()
    for relative in sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()):
        manifest.update(f"{file_sha256(path / relative)}  {relative}\n".encode())
    return manifest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of one file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, source: str, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        what = "directory manifest" if path.is_dir() else "file"
        raise ArtifactError(
            f"model artifact {source} failed the integrity check: SHA-256 of the {what} is "
            f"{actual}, expected {expected} (MODEL_SHA256)"
        )


def _download(uri: str, cache_dir: Path) -> Path:
    """Fetch ``uri`` once into the cache; returns the single object, or the folder of objects."""
    target = cache_dir / f"download-{hashlib.sha256(uri.encode()).hexdigest()[:16]}"
    marker = target.with_name(target.name + ".complete")  # holds "object" or "prefix"
    with file_lock(target.with_name(target.name + ".lock")):
        if not marker.exists():
            _fresh_dir(target)
            fetch = _download_s3 if uri.startswith("s3://") else _download_gcs
            marker.write_text("prefix" if fetch(uri, target) else "object")
    if marker.read_text() == "object":
        return next(target.iterdir())
    return target


def _unpack_if_archive(path: Path, cache_dir: Path) -> Path:
    archive = path
    if path.is_dir():
        entries = list(path.iterdir())
        if len(entries) != 1 or not entries[0].name.endswith(ARCHIVE_SUFFIXES):
            return path
        archive = entries[0]
    if not archive.is_file() or not archive.name.endswith(ARCHIVE_SUFFIXES):
        return path
    stat = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = cache_dir / f"unpacked-{key.hexdigest()[:16]}"
    marker = target.with_name(target.name + ".complete")
    with file_lock(target.with_name(target.name + ".lock")):
        if not marker.exists():
            _fresh_dir(target)
            try:
                with tarfile.open(archive, "r:*") as tar:
                    tar.extractall(target, filter="data")
            except (tarfile.TarError, OSError) as exc:
                shutil.rmtree(target, ignore_errors=True)
                raise ArtifactError(
                    f"refusing to unpack {archive.name}: {type(exc).__name__}: {exc}"
                ) from exc
            marker.touch()
    return target


def _select_objects(uri: str, key: str, names: list[str]) -> tuple[bool, list[tuple[str, str]]]:
    """``(is_prefix, [(object name, local relative path)])`` for the objects ``uri`` means."""
    if key in names and not key.endswith("/"):
        return False, [(key, PurePosixPath(key).name)]
    folder = key.rstrip("/") + "/" if key.strip("/") else ""
    pairs = [(n, n[len(folder) :]) for n in names if n.startswith(folder) and not n.endswith("/")]
    if not pairs:
        raise ArtifactError(
            f"nothing found at {uri}: no object named {key!r} and none under {folder or '/'!r}"
        )
    for _, relative in pairs:
        parts = PurePosixPath(relative).parts
        if not parts or ".." in parts or relative.startswith("/"):
            raise ArtifactError(f"object {relative!r} under {uri} would land outside the model dir")
    return True, pairs


def _download_s3(uri: str, target: Path) -> bool:
    """Download into ``target``; True when ``uri`` named a folder rather than one object."""
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ArtifactError(f"{uri} needs boto3: install ml-endpoints[aws]") from exc
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        s3 = boto3.client("s3")
        listing = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key.rstrip("/")
        )
        names = [obj["Key"] for page in listing for obj in page.get("Contents", [])]
        is_prefix, pairs = _select_objects(uri, key, names)
        for name, relative in pairs:
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, name, str(dest))
    except ArtifactError:
        raise
    except Exception as exc:  # botocore raises many unrelated types
        raise ArtifactError(f"cannot download {uri}: {type(exc).__name__}: {exc}") from exc
    return is_prefix


def _download_gcs(uri: str, target: Path) -> bool:
    """Download into ``target``; True when ``uri`` named a folder rather than one object."""
    try:
        import google.cloud.storage as storage
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ArtifactError(f"{uri} needs google-cloud-storage: install ml-endpoints[gcp]") from exc
    bucket_name, _, key = uri.removeprefix("gs://").partition("/")
    try:
        client = storage.Client()  # anonymous when STORAGE_EMULATOR_HOST is set
        blobs = {b.name: b for b in client.list_blobs(bucket_name, prefix=key.rstrip("/"))}
        is_prefix, pairs = _select_objects(uri, key, list(blobs))
        for name, relative in pairs:
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            blobs[name].download_to_filename(str(dest))
    except ArtifactError:
        raise
    except Exception as exc:  # google-api-core raises many unrelated types
        raise ArtifactError(f"cannot download {uri}: {type(exc).__name__}: {exc}") from exc
    return is_prefix


def _fresh_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


@contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing) across processes."""
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


__all__ = ["ArtifactError", "materialize", "sha256_of"]
