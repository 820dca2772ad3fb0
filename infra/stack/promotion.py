"""``ml-endpoints promote SRC DST`` and ``ml-endpoints rollback DST``: move a release between
stack files, editing them in place so the change goes through a pull request.

Promotion copies ``ml-endpoints:release`` (model, image tag and digest, variants and weights)
from ``Pulumi.SRC.yaml`` into ``Pulumi.DST.yaml`` and keeps DST's current release under
``ml-endpoints:previous_release``; rollback puts that previous release back and removes the key.
The YAML is edited with ruamel.yaml's round-trip mode: values change in place, so comments,
key order and quoting survive, and a promotion followed by a rollback restores the release
section byte for byte. Each file is parsed once; the edited document is validated as a whole
stack before anything is written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from infra.stack.config import NAMESPACE, Release, load_stack
from infra.stack.files import (
    STACKS_DIR,
    StackError,
    dump_document,
    load_document,
    plain,
    plain_config,
    stack_file,
)
from infra.validation import validate

RELEASE_KEY = f"{NAMESPACE}:release"
PREVIOUS_KEY = f"{NAMESPACE}:previous_release"


class PromotionError(ValueError):
    """The promotion or rollback was refused; nothing was written."""


@dataclass(frozen=True)
class Change:
    """What a promotion or rollback did to one stack file."""

    path: Path
    summary: list[str]
    text: str
    """The new content of the stack file."""


def _load(path: Path) -> CommentedMap:
    document = load_document(path)  # an unreadable or invalid file: a StackError, as for plan
    if not isinstance(document.get("config"), dict):
        raise PromotionError(f"{path}: not a stack file (no config mapping)")
    return document


ORDER = ("dev", "staging", "prod")
"""The stages a release goes through; promotion moves it one stage at a time."""


def promote(src: str, dst: str, stacks_dir: Path = STACKS_DIR, *, force: bool = False) -> Change:
    """Copy SRC's release into DST (in memory; :func:`write` saves it). Skipping a stage of
    :data:`ORDER` (``dev`` -> ``prod``) or going backwards is refused unless ``force``."""
    if not force:
        _refuse_out_of_order(src, dst)
    src_path, dst_path = stack_file(src, stacks_dir), stack_file(dst, stacks_dir)
    source_release = _load(src_path)["config"].get(RELEASE_KEY)
    if source_release is None:
        raise PromotionError(f"{src_path}: has no {RELEASE_KEY} to promote")
    new = _release(source_release, f"{src_path}: {RELEASE_KEY}")
    document = _load(dst_path)
    config = document["config"]
    current = config.get(RELEASE_KEY)
    old = _release(current, f"{dst_path}: {RELEASE_KEY}") if current is not None else None
    if old == new:
        raise PromotionError(f"{dst_path} already runs the release of {src_path}")
    _refuse_mutable_tag(dst_path, plain_config(document), new)
    if current is None:
        config[RELEASE_KEY] = copy.deepcopy(source_release)
    else:
        config[PREVIOUS_KEY] = copy.deepcopy(current)
        _sync(current, source_release)
    _validate(document, dst_path)
    summary = [f"promote {src} -> {dst}", *describe(old, new)]
    return Change(dst_path, summary, dump_document(document))


def _refuse_out_of_order(src: str, dst: str) -> None:
    if src not in ORDER or dst not in ORDER:
        return
    step = ORDER.index(dst) - ORDER.index(src)
    if step == 1:
        return
    order = " -> ".join(ORDER)
    if step > 1:
        skipped = ", ".join(ORDER[ORDER.index(src) + 1 : ORDER.index(dst)])
        why = f"{skipped} would be skipped: the release has not run there"
        instead = f"promote {src} {ORDER[ORDER.index(src) + 1]} first"
    else:
        why = f"{dst} comes before {src}"
        instead = f"use rollback {dst} to go back"
    raise PromotionError(
        f"refusing to promote {src} -> {dst}: the order is {order} and {why}; {instead}, or "
        "pass --force"
    )


def rollback(dst: str, stacks_dir: Path = STACKS_DIR) -> Change:
    """Restore DST's previous release (in memory; :func:`write` saves it)."""
    dst_path = stack_file(dst, stacks_dir)
    document = _load(dst_path)
    config = document["config"]
    previous = config.get(PREVIOUS_KEY)
    if previous is None:
        raise PromotionError(
            f"{dst_path}: no {PREVIOUS_KEY} to roll back to (only the last promotion can be "
            "undone this way; older releases are in git history)"
        )
    current = _release(config[RELEASE_KEY], f"{dst_path}: {RELEASE_KEY}")
    restored = _release(previous, f"{dst_path}: {PREVIOUS_KEY}")
    _sync(config[RELEASE_KEY], previous)
    del config[PREVIOUS_KEY]
    _validate(document, dst_path)
    summary = [f"rollback {dst}", *describe(current, restored)]
    return Change(dst_path, summary, dump_document(document))


def write(change: Change) -> None:
    """Save the edited stack file."""
    change.path.write_text(change.text)


def describe(old: Release | None, new: Release) -> list[str]:
    """Human summary of a release change: image, model versions, traffic."""
    if old is None:
        return [f"new release: model {new.model_name}, image {new.image.shown}"]
    lines = []
    if old.image != new.image:
        lines.append(f"image {_image(old)} -> {_image(new)}")
    if old.model_name != new.model_name:
        lines.append(f"model {old.model_name} -> {new.model_name}")
    before = {v.name: v for v in old.variants}
    after = {v.name: v for v in new.variants}
    for name, variant in after.items():
        was = before.get(name)
        if was is None:
            lines.append(f"{name} added: model {variant.model_version}, {variant.weight}%")
            continue
        if was.model_version != variant.model_version:
            lines.append(f"{name} model {was.model_version} -> {variant.model_version}")
        if was.weight != variant.weight:
            lines.append(f"{name} {was.weight}% -> {variant.weight}%")
        if (was.s3_uri, was.gcs_uri) != (variant.s3_uri, variant.gcs_uri) and (
            was.model_version == variant.model_version
        ):
            lines.append(f"{name} artifacts changed")
    lines += [
        f"{name} removed (was {v.weight}%)" for name, v in before.items() if name not in after
    ]
    return lines or ["no change"]


def _image(release: Release) -> str:
    image = release.image
    return image.shown if image.digest else f"{image.tag} (tag, mutable)"


def _release(node: Any, where: str) -> Release:
    try:
        return validate(Release, plain(node), where)
    except ValueError as exc:
        raise PromotionError(str(exc)) from None


def _refuse_mutable_tag(dst_path: Path, config: dict[str, Any], release: Release) -> None:
    production = bool((config.get(f"{NAMESPACE}:policy") or {}).get("production", False))
    if production and release.image.digest is None:
        raise PromotionError(
            f"refusing to promote to {dst_path}: a production stack needs the image pinned by "
            f"digest, the release has only the mutable tag {release.image.tag!r}; set "
            f"{RELEASE_KEY}.image.digest (sha256:...) in the source stack first"
        )


def _validate(document: CommentedMap, path: Path) -> None:
    try:
        load_stack(plain_config(document), str(path))
    except StackError as exc:
        raise PromotionError(f"the result would be invalid, nothing written: {exc}") from None


def _sync(target: Any, source: Any) -> None:
    """Make ``target`` equal ``source`` in place: same keys keep their place and comments,
    list items of mappings are matched by ``name``."""
    if isinstance(target, CommentedMap) and isinstance(source, dict):
        for key in [k for k in target if k not in source]:
            del target[key]
        for key, value in source.items():
            if key in target and _same_kind(target[key], value):
                _sync(target[key], value)
                if not isinstance(value, dict | list):
                    target[key] = copy.deepcopy(value)
            else:
                target[key] = copy.deepcopy(value)
        return
    if isinstance(target, CommentedSeq) and isinstance(source, list):
        by_name = {_name(item): item for item in target if _name(item) is not None}
        items = []
        for item in source:
            existing = by_name.get(_name(item))
            if existing is not None and _same_kind(existing, item):
                _sync(existing, item)
                items.append(existing)
            else:
                items.append(copy.deepcopy(item))
        _reorder(target, items)


def _reorder(target: CommentedSeq, items: list[Any]) -> None:
    comments = {id(item): target.ca.items.get(i) for i, item in enumerate(target)}
    target[:] = items
    target.ca.items.clear()
    for index, item in enumerate(items):
        comment = comments.get(id(item))
        if comment is not None:
            target.ca.items[index] = comment


def _name(item: Any) -> Any:
    return item.get("name") if isinstance(item, dict) else None


def _same_kind(a: Any, b: Any) -> bool:
    kinds = (dict, list)
    return [isinstance(a, k) for k in kinds] == [isinstance(b, k) for k in kinds]
