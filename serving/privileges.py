"""Start as root only to read the model, then serve as the unprivileged serving user.

SageMaker runs the container as root and may unpack ``model.tar.gz`` into ``/opt/ml/model`` as
root-owned files of mode 0600, which the serving user could not read. So the image starts as
root and, before any request is served, the server:

1. copies a local model the serving user cannot read into a private directory under the cache
   directory, owned by the serving user (readable models are used where they are);
2. hands the cache directory (and the multi-process metrics directory) to the serving user;
3. drops to the serving user's uid and gid for good (``setgroups``, ``setgid``, ``setuid``).

Where the platform already runs the container unprivileged (Kubernetes with ``runAsNonRoot``,
``docker run --user``), nothing happens; nor does it without ``ML_ENDPOINTS_SERVING_USER``
(the image sets it; a server started as root on a workstation stays as it was started).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.settings import Settings

log = logging.getLogger("ml_endpoints.privileges")

STAGED_PREFIX = "staged-model-"


@dataclass(frozen=True)
class ServingUser:
    """The uid and gid requests are served as."""

    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str) -> ServingUser:
        """``"UID"`` or ``"UID:GID"``, numeric (the image has no need for /etc/passwd)."""
        uid_text, _, gid_text = text.partition(":")
        try:
            uid = int(uid_text)
            gid = int(gid_text) if gid_text else uid
        except ValueError:
            raise ValueError(f"serving user {text!r} must be numeric UID or UID:GID") from None
        if uid <= 0 or gid <= 0:
            raise ValueError(f"serving user {text!r} must not be root (uid and gid > 0)")
        return cls(uid, gid)


def can_read(path: Path, user: ServingUser) -> bool:
    """Whether ``user`` can read ``path`` and, for a directory, everything under it (by the
    permission bits, as the kernel would decide for that uid and gid)."""
    if not _allows(path, user, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH):
        return False
    if not path.is_dir():
        return True
    if not _allows(path, user, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
        return False
    return all(can_read(child, user) for child in path.iterdir())


def _allows(path: Path, user: ServingUser, owner: int, group: int, other: int) -> bool:
    info = path.stat()
    if info.st_uid == user.uid:
        return bool(info.st_mode & owner)
    if info.st_gid == user.gid:
        return bool(info.st_mode & group)
    return bool(info.st_mode & other)


def stage(source: Path, cache_dir: Path, user: ServingUser) -> Path:
    """``source`` itself if ``user`` can read it, else a private copy owned by ``user``.

    The copy's directory is named by the source's path so that restarts reuse it; it is made
    afresh each time (the source may have changed) and readable by ``user`` alone."""
    if can_read(source, user):
        return source
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    target = cache_dir / f"{STAGED_PREFIX}{key}"
    if target.exists():
        shutil.rmtree(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
        copied = target
    else:
        target.mkdir()
        copied = target / source.name
        shutil.copyfile(source, copied)
    give_to(target, user, private=True)
    log.info(
        "model at %s is not readable by uid %d: serving a copy at %s", source, user.uid, copied
    )
    return copied


def give_to(path: Path, user: ServingUser, *, private: bool = False) -> None:
    """Make ``path`` (recursively) owned by ``user``; ``private``: readable by ``user`` only."""
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if item.is_symlink():
            continue
        os.chown(item, user.uid, user.gid)
        if private:
            item.chmod(0o700 if item.is_dir() else 0o600)


def drop_to(user: ServingUser) -> None:
    """Give up root for good: supplementary groups, then gid, then uid (in that order: once the
    uid is unprivileged, the groups can no longer be changed)."""
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - setuid failing silently
        raise RuntimeError("could not give up root")
    log.info("serving as uid %d, gid %d", user.uid, user.gid)


def unprivileged(settings: Settings) -> Settings:
    """Run as root: stage the model for the serving user, hand over the directories the server
    writes, drop to that user; returns the settings to serve with (pointing at the staged copy).
    Not root, or no serving user configured: ``settings`` as they are."""
    if os.geteuid() != 0 or settings.serving_user is None:
        return settings
    user = ServingUser.parse(settings.serving_user)
    cache_dir = Path(settings.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chown(cache_dir, user.uid, user.gid)  # the directory only: it may be shared (/tmp)
    update: dict[str, str] = {}
    source = settings.model_source
    if source is not None and "://" not in source and Path(source).exists():
        staged = stage(Path(source), cache_dir, user)
        if staged != Path(source):
            update["model_uri"] = str(staged)
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        give_to(Path(metrics_dir), user)
    drop_to(user)
    return settings.model_copy(update=update)
