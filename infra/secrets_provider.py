"""The secrets provider a stack file names, so that a fresh CI runner can decrypt its secrets.

Pulumi keeps a stack's secrets provider in the stack file (``secretsprovider:``, with
``encryptedkey:`` once a secret was set) and uses it whenever the file names one
(pulumi/pulumi ``pkg/cmd/pulumi/stack/secrets.go``, ``GetSecretsManager``). A stack created on a
new backend without it would get the backend's default provider instead, and could not read the
file's ``secure:`` values. Each stack file therefore names one of:

- ``awskms://alias/NAME?region=REGION`` or ``gcpkms://projects/.../cryptoKeys/KEY``: the deploy
  role of the stack's environment decrypts with its cloud identity (no stored secret);
- ``passphrase``: only with ``PULUMI_CONFIG_PASSPHRASE`` provided to the job as an environment
  secret (stacks/README.md says how).

``python -m infra.secrets_provider STACK`` prints ``provider=...`` for a workflow's
``$GITHUB_OUTPUT`` (pulumi/actions ``secrets-provider`` when it creates the stack).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ruamel.yaml import YAML

PROVIDER = re.compile(r"^(awskms://\S+|gcpkms://projects/\S+|passphrase)$")


class SecretsProviderError(ValueError):
    """The stack file names no usable secrets provider."""


def secrets_provider(path: Path) -> str:
    """The ``secretsprovider`` of the stack file at ``path``."""
    document = YAML(typ="safe").load(path.read_text()) or {}
    provider = document.get("secretsprovider") if isinstance(document, dict) else None
    if not isinstance(provider, str) or not PROVIDER.match(provider):
        raise SecretsProviderError(
            f"{path}: secretsprovider: name awskms://alias/NAME?region=REGION, "
            "gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K or passphrase, so a new "
            f"runner can decrypt the stack's secrets (got {provider!r})"
        )
    return provider


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.secrets_provider STACK [STACKS_DIR]``."""
    args = argv if argv is not None else sys.argv[1:]
    stack, stacks_dir = args[0], Path(args[1] if len(args) > 1 else "stacks")
    try:
        print(f"provider={secrets_provider(stacks_dir / f'Pulumi.{stack}.yaml')}")
    except (OSError, SecretsProviderError) as exc:
        print(f"secrets provider: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
