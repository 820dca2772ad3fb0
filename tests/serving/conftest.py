"""Fixtures shared by the serving tests: podman with the project's image built."""

from __future__ import annotations

import pytest

from tests.serving.image.podman import IMAGE, Podman, PodmanUnavailable


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman with :data:`IMAGE` built (layer cache makes a rebuild of unchanged code quick)."""
    cache_dir = tmp_path_factory.mktemp("image-build")
    client = Podman(cache_dir)
    try:
        client.build(IMAGE, cache_dir / "build.log")
    except PodmanUnavailable as exc:
        pytest.skip(f"cannot build the image: {exc}")
    return client
