"""Every stack file names a secrets provider a fresh runner can use (infra/secrets_provider.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.secrets_provider import SecretsProviderError, main, secrets_provider
from tests.infra.offline_plans import STACKS, STACKS_DIR


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_names_a_kms_provider(stack: str) -> None:
    provider = secrets_provider(STACKS_DIR / f"Pulumi.{stack}.yaml")
    assert provider.startswith(("awskms://", "gcpkms://"))


def test_a_stack_file_without_one_is_refused_with_what_to_write(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.new.yaml"
    path.write_text("config:\n  aws:region: us-east-1\n")
    with pytest.raises(SecretsProviderError, match=r"secretsprovider: name awskms://"):
        secrets_provider(path)
    path.write_text("secretsprovider: default\nconfig: {}\n")
    with pytest.raises(SecretsProviderError, match="got 'default'"):
        secrets_provider(path)


def test_the_module_prints_a_github_output_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prod", str(STACKS_DIR)]) == 0
    assert (
        capsys.readouterr().out == "provider=awskms://alias/ml-endpoints-pulumi?region=us-east-1\n"
    )
