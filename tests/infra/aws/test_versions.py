"""The pulumi-aws the code is written against (item 10 of issue 13)."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pulumi_aws as aws
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]


def test_pulumi_aws_is_pinned_to_the_major_version_the_code_uses() -> None:
    """``aws.get_region_output().region`` (infra/aws/sagemaker.py, infra/clusters/eks.py)
    exists from pulumi-aws 7 (v6's result has ``name``): the pin admits 7.x only, and the
    installed version is one."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (pin,) = [Requirement(r) for r in extras["infra"] if r.startswith("pulumi-aws")]
    assert not pin.specifier.contains("6.99")
    assert pin.specifier.contains("7.0")
    assert not pin.specifier.contains("8.0")
    assert Version(version("pulumi-aws")).major == 7
    assert "region" in aws.GetRegionResult.__init__.__code__.co_varnames
