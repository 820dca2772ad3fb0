"""Pulumi's entry point (``main: infra/program/`` in Pulumi.yaml).

Pulumi's Python language host runs this directory with ``runpy.run_path``, which puts the
directory itself first on ``sys.path``; it holds nothing but this file, so nothing in it can
shadow an importable module, and ``infra`` is imported as the installed package.
"""

from infra.stack.program import main

main()
