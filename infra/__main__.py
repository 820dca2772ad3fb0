"""Pulumi's entry point (``main: infra/`` in Pulumi.yaml): runs :func:`infra.program.main`."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script, which puts infra/ itself first on sys.path: its
# modules (cli, plan, stack...) would shadow top-level ones. Import infra as the package.
_here = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _here]

from infra.program import main  # noqa: E402

main()
