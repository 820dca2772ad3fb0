"""``ml-endpoints images --stack NAME [--copy-from REPOSITORY]``: the images a stack deploys, and
their copy by digest into the stack's own registries.

The serving image is built once, pushed to one build repository, and every stack's registries
receive that same image by digest (``crane copy``, go-containerregistry's maintained tool; the
Docker-free equivalent of ``docker buildx imagetools create``). Nothing is re-tagged: the copy
keeps the manifest bytes, so the digest the stack pins is the digest that runs, and a mutable tag
can never change what a stack deploys.

Without ``--copy-from`` the command prints one line per target image, ``REPOSITORY TAG DIGEST``
(``-`` for no digest), for scripts. With it, each image is copied from the build repository
unless the destination already holds that digest, and the destination's digest is read back and
compared.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.preflight import references
from infra.registries import ImageReference


class CopyError(RuntimeError):
    """A copy failed or did not keep the digest; the message says which and why."""


def stack_images(stack: Any) -> list[ImageReference]:
    """The distinct images the stack's enabled targets deploy, in target order."""
    found = [r.image for r in references(stack) if r.image is not None]
    return list(dict.fromkeys(found))


def copy_images(images: Sequence[ImageReference], source: str, crane: str = "crane") -> list[str]:
    """Copy each image from the ``source`` repository by digest (by tag when the release pins
    none); returns what was done, one line per image."""
    done = []
    for image in images:
        wanted = image.digest or _digest(crane, f"{source}:{image.tag}")
        destination = f"{image.repository}:{image.tag}"
        if _has(crane, f"{image.repository}@{wanted}"):
            done.append(f"present {image.repository}@{wanted}")
            continue
        _crane(crane, "copy", f"{source}@{wanted}", destination)
        copied = _digest(crane, destination)
        if copied != wanted:
            raise CopyError(
                f"{destination} is {copied} after copying {source}@{wanted}: the registry "
                "changed the manifest; copy with a tool that keeps it (crane copy)"
            )
        done.append(f"copied {source}@{wanted} -> {destination}")
    return done


def _crane(crane: str, *args: str) -> str:
    try:
        result = subprocess.run([crane, *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise CopyError(
            f"{crane} is not installed: https://github.com/google/go-containerregistry "
            "(in CI: imjasonh/setup-crane)"
        ) from None
    if result.returncode != 0:
        raise CopyError(f"crane {' '.join(args)}: {result.stderr.strip() or result.stdout}")
    return result.stdout.strip()


def _digest(crane: str, reference: str) -> str:
    return _crane(crane, "digest", reference)


def _has(crane: str, reference: str) -> bool:
    try:
        _digest(crane, reference)
    except CopyError:
        return False
    return True


def register(subparsers: Any) -> None:
    """``ml-endpoints images`` (an ``ml_endpoints.commands`` entry point)."""
    parser = subparsers.add_parser(
        "images",
        help="the images a stack deploys; with --copy-from, copy them there by digest",
        description="Print REPOSITORY TAG DIGEST per target image of the stack, or copy each "
        "from the build repository by digest with crane (the digest is read back and compared).",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--copy-from", metavar="REPOSITORY", help="the build repository to copy the images from"
    )
    parser.add_argument(
        "--stacks-dir",
        type=Path,
        default=Path("stacks"),
        help="directory holding the stack files (default: stacks)",
    )
    parser.set_defaults(func=lambda args: run(args.stack, args.stacks_dir, args.copy_from))


def run(stack: str, stacks_dir: Path, source: str | None) -> int:
    """0 on success, 1 when a copy failed, 2 on an invalid stack."""
    from infra.stack.config import load_stack_file
    from infra.validation import ConfigError

    try:
        images = stack_images(load_stack_file(stack, stacks_dir))
    except ConfigError as exc:
        print(f"ml-endpoints images: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if source is None:
        for image in images:
            print(image.repository, image.tag, image.digest or "-")
        return 0
    try:
        for line in copy_images(images, source):
            print(line)
    except CopyError as exc:
        print(f"ml-endpoints images: {exc}", file=sys.stderr)
        return 1
    return 0
