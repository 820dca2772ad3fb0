"""Bring a model artifact to local disk: files, directories, ``.tar.gz``, ``s3://`` and ``gs://``.

Several workers may start at once: a file lock per source makes one of them download and unpack
while the others wait and reuse the result.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


class ArtifactError(RuntimeError):
    """The model artifact could not be fetched, unpacked or verified."""


def materialize(source: str, cache_dir: Path) -> Path:
    """Return a local file or directory holding the model named by ``source``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if source.startswith(("s3://", "gs://")):
        key = hashlib.sha256(source.encode()).hexdigest()[:16]
        target = cache_dir / f"download-{key}"
        with _locked(cache_dir / f"{key}.lock"):
            if not (target / ".complete").exists():
                _fresh_dir(target)
                if source.startswith("s3://"):
                    _download_s3(source, target)
                else:
                    _download_gcs(source, target)
                (target / ".complete").touch()
        return _unpack_if_archive(_single_entry(target), cache_dir)
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.exists():
        raise ArtifactError(f"model path {path} does not exist")
    return _unpack_if_archive(path, cache_dir)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (sorted relative paths and contents)."""
    digest = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".complete")
    )
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _single_entry(directory: Path) -> Path:
    """A download of one object is that object; of a prefix, the directory."""
    entries = [p for p in directory.iterdir() if p.name != ".complete"]
    return entries[0] if len(entries) == 1 and entries[0].is_file() else directory


def _unpack_if_archive(path: Path, cache_dir: Path) -> Path:
    archive = path
    if path.is_dir():
        archives = [p for p in path.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES)]
        others = [p for p in path.iterdir() if p not in archives and p.name != ".complete"]
        if len(archives) != 1 or others:
            return path
        archive = archives[0]
    if not archive.name.endswith(ARCHIVE_SUFFIXES):
        return path
    stat = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = cache_dir / f"unpacked-{key.hexdigest()[:16]}"
    with _locked(cache_dir / f"{target.name}.lock"):
        if not (target / ".complete").exists():
            _fresh_dir(target)
            try:
                with tarfile.open(archive, "r:*") as tar:
                    tar.extractall(target, filter="data")  # refuses links and paths outside
            except (tarfile.TarError, OSError) as exc:
                raise ArtifactError(f"cannot unpack {archive}: {exc}") from exc
            (target / ".complete").touch()
    return target


def _download_s3(uri: str, target: Path) -> None:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ArtifactError(f"{uri} needs boto3: install ml-endpoints[aws]") from exc
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")  # honours AWS_ENDPOINT_URL, AWS_REGION and the usual credentials
    try:
        keys = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            for obj in page.get("Contents", [])
            if not obj["Key"].endswith("/")
        ]
        if not keys:
            raise ArtifactError(f"nothing found at {uri}")
        exact = key in keys
        for name in [key] if exact else keys:
            relative = Path(name).name if exact else os.path.relpath(name, key.rstrip("/") or ".")
            _check_relative(relative, uri)
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, name, str(dest))
    except ArtifactError:
        raise
    except Exception as exc:  # botocore raises many unrelated types
        raise ArtifactError(f"cannot download {uri}: {exc}") from exc


def _download_gcs(uri: str, target: Path) -> None:
    try:
        from google.cloud import storage
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ArtifactError(f"{uri} needs google-cloud-storage: install ml-endpoints[gcp]") from exc
    bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
    try:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project="local", credentials=AnonymousCredentials())
        else:
            client = storage.Client()
        blobs = [
            b for b in client.list_blobs(bucket_name, prefix=prefix) if not b.name.endswith("/")
        ]
        if not blobs:
            raise ArtifactError(f"nothing found at {uri}")
        exact = [b for b in blobs if b.name == prefix]
        for blob in exact or blobs:
            relative = (
                Path(blob.name).name
                if exact
                else os.path.relpath(blob.name, prefix.rstrip("/") or ".")
            )
            _check_relative(relative, uri)
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(dest))
    except ArtifactError:
        raise
    except Exception as exc:  # google-api-core raises many unrelated types
        raise ArtifactError(f"cannot download {uri}: {exc}") from exc


def _check_relative(relative: str, uri: str) -> None:
    if relative.startswith("..") or os.path.isabs(relative):
        raise ArtifactError(f"object {relative!r} under {uri} would land outside the model dir")


def _fresh_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


__all__ = ["ArtifactError", "materialize", "sha256_of"]
