"""GPU instance families for EKS from botocore's EC2 enumeration (item 6 of issue 13)."""

from __future__ import annotations

import pytest

from infra.clusters.instance_types import ec2_instance_types, is_nvidia_x86, nvidia_gpu_families


def test_new_families_come_with_botocore() -> None:
    """botocore's ec2 ``InstanceType`` enum lists g6f, gr6f, g7e and p6-b200 (a hand list missed
    them); every family found has instance types there."""
    families = nvidia_gpu_families()
    for wanted in ("g4dn", "g5", "g6", "g6e", "g6f", "gr6f", "g7e", "p5en", "p6-b200"):
        assert wanted in families
    types = ec2_instance_types()
    assert all(any(t.startswith(f"{f}.") for t in types) for f in families)


@pytest.mark.parametrize(
    ("instance_family", "why"),
    [
        ("g5g", "Graviton: the AL2023 NVIDIA AMI is x86_64"),
        ("g4ad", "AMD Radeon GPUs"),
        ("p6e-gb200", "Grace (ARM) CPU"),
        ("g3", "Maxwell: older than the AMI's driver supports"),
        ("p2", "Kepler"),
        ("inf2", "Inferentia, not a GPU"),
        ("m6i", "no GPU"),
    ],
)
def test_families_the_nvidia_ami_cannot_run_are_excluded(instance_family: str, why: str) -> None:
    assert not is_nvidia_x86(instance_family), why
    assert instance_family not in nvidia_gpu_families()
