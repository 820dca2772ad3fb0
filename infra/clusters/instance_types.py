"""EC2 instance families an EKS GPU node group can use, from the EC2 API model botocore ships.

botocore's ``ec2`` service model enumerates every instance type (``InstanceType``), and is
updated with each release; a hand-written list is out of date the day a family launches (it
missed g6f, gr6f, g7, g7e and p6). The accelerated families are the ``g``/``gr``/``p`` ones;
the AL2023 NVIDIA AMI runs x86_64 NVIDIA GPUs, so excluded are:

- Graviton (ARM) families, whose attribute letters include ``g`` (``g5g``) or whose variant
  names a Grace CPU (``p6e-gb200``);
- AMD GPU families, attribute ``a`` (``g4ad``);
- generations the AMI's NVIDIA driver no longer supports: before g4 (``g2``, ``g3``, ``g3s``:
  Kepler/Maxwell) and p2 (Kepler).
"""

from __future__ import annotations

import functools
import re

import botocore.loaders

#: ``FAMILY[-VARIANT].SIZE``: letters, generation, attribute letters, optional variant.
_FAMILY = re.compile(
    r"^(?P<series>gr|g|p)(?P<generation>\d+)(?P<attributes>[a-z]*)(?:-(?P<variant>[a-z0-9]+))?$"
)
#: Oldest generation per series that the AL2023 NVIDIA AMI's driver supports.
_OLDEST = {"g": 4, "gr": 6, "p": 3}


@functools.cache
def ec2_instance_types() -> frozenset[str]:
    """Every EC2 instance type botocore's EC2 API model knows."""
    model = botocore.loaders.Loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])


def family(instance_type: str) -> str:
    """``g6e.2xlarge`` -> ``g6e``; ``p6-b200.48xlarge`` -> ``p6-b200``."""
    return instance_type.split(".", 1)[0]


def is_nvidia_x86(instance_family: str) -> bool:
    """Whether a family carries NVIDIA GPUs on x86_64 (see the module docstring)."""
    match = _FAMILY.match(instance_family)
    if match is None:
        return False
    attributes, variant = match["attributes"], match["variant"] or ""
    if "g" in attributes or "a" in attributes or variant.startswith("gb"):
        return False
    return int(match["generation"]) >= _OLDEST[match["series"]]


@functools.cache
def nvidia_gpu_families() -> tuple[str, ...]:
    """The x86_64 NVIDIA GPU families in botocore's EC2 enumeration, sorted."""
    return tuple(sorted({f for f in map(family, ec2_instance_types()) if is_nvidia_x86(f)}))
