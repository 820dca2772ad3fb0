"""``ml-endpoints``: the serving commands, and every command group installed beside them.

Each half registers its own subcommands with ``set_defaults(func=...)``; this module knows the
serving half only. Others arrive through the :data:`COMMAND_GROUP` entry points, so the container
(which has no ``infra``) runs the same script with the serving commands alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import ValidationError

from serving.drift import cli as drift_cli

#: CLI flag -> settings field, for flags that override settings.
SERVE_FLAGS = {
    "model": "model_uri",
    "port": "port",
    "host": "host",
    "workers": "workers",
    "handler": "handler",
    "model_name": "model_name",
    "model_version": "model_version",
    "output": "output",
    "log_level": "log_level",
}


COMMAND_GROUP = "ml_endpoints.commands"
"""Entry-point group through which other halves of the package add commands: each entry is a
``register(subparsers)`` function (``infra = "infra.cli:register"`` in pyproject.toml)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``ml-endpoints`` parser: the serving commands, then every installed command group.

    A group whose package is not installed (the image has no ``infra``) is left out; a group
    that is installed but fails to import is reported on stderr, never hidden."""
    parser = argparse.ArgumentParser(
        prog="ml-endpoints",
        description="Serve ML models on SageMaker, Vertex AI and Kubernetes.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    drift_cli.register(subparsers)
    for entry in entry_points(group=COMMAND_GROUP):
        try:
            entry.load()(subparsers)
        except ModuleNotFoundError as exc:
            if exc.name == entry.value.partition(".")[0].partition(":")[0]:
                continue  # that half of the package is not installed here
            _report_broken(entry.name, exc)
        except Exception as exc:
            _report_broken(entry.name, exc)
    return parser


def _report_broken(group: str, exc: BaseException) -> None:
    print(
        f"ml-endpoints: the {group} commands are unavailable: they failed to load "
        f"({type(exc).__name__}: {exc})",
        file=sys.stderr,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the serving commands: ``serve``, ``healthcheck``, ``demo-model``."""
    serve = subparsers.add_parser(
        "serve", help="serve a model over HTTP (all protocols on one port)"
    )
    serve.add_argument(
        "--model",
        help="file, directory, .tar.gz, s3:// or gs:// URI "
        "(default: MODEL_URI, AIP_STORAGE_URI, /opt/ml/model, else the demo model)",
    )
    serve.add_argument(
        "--port", type=int, help="default: SAGEMAKER_BIND_TO_PORT, AIP_HTTP_PORT, 8080"
    )
    serve.add_argument("--host", help="default 0.0.0.0")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument(
        "--handler", help="inference script with model_fn/input_fn/predict_fn/output_fn"
    )
    serve.add_argument("--model-name", help="name in OIP/V1 routes and metrics (default 'model')")
    serve.add_argument("--model-version", help="version in OIP routes and metrics (default '1')")
    serve.add_argument(
        "--output",
        choices=["label", "probabilities"],
        help="what instance-style protocols return per row (default label)",
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    check = subparsers.add_parser(
        "healthcheck", help="exit 0 if the local server answers /ping with 200"
    )
    check.add_argument("--port", type=int, help="default: as 'serve' resolves it")
    check.add_argument("--timeout", type=float, default=2.0)
    check.set_defaults(func=lambda args: _healthcheck(args.port, args.timeout))

    demo = subparsers.add_parser("demo-model", help="write the bundled demo model's artifacts")
    demo.add_argument("--out", type=Path, required=True, help="directory to write into")
    demo.add_argument("--kind", choices=["logreg", "hgb"], default="logreg")
    demo.add_argument("--onnx", action="store_true", help="also write model.onnx (needs [onnx])")
    demo.set_defaults(func=_demo_model)


def _demo_model(args: argparse.Namespace) -> int:
    from serving.demo import write_demo_artifacts

    out = write_demo_artifacts(args.out, args.kind, onnx=args.onnx)
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from serving.settings import Settings

    overrides = {
        field: getattr(args, flag)
        for flag, field in SERVE_FLAGS.items()
        if getattr(args, flag) is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            flag = next(
                (f"--{f.replace('_', '-')}" for f, s in SERVE_FLAGS.items() if s == key), None
            )
            where = flag or f"ML_ENDPOINTS_{key.upper()}"
            print(
                f"ml-endpoints: invalid {where}={error.get('input')!r}: {error['msg']}",
                file=sys.stderr,
            )
        return 2
    from serving.auth import Authenticator

    try:
        Authenticator.from_settings(settings)  # fail fast, before binding the port
    except ValueError as exc:
        print(f"ml-endpoints: {exc}", file=sys.stderr)
        return 2
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ml-endpoints-metrics-")
    from serving.server import serve

    return serve(settings)


def _healthcheck(port: int | None, timeout: float) -> int:
    """For container HEALTHCHECKs: no curl needed in the image."""
    import urllib.error
    import urllib.request

    from serving.settings import Settings

    port = port or Settings().resolved_port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"ml-endpoints healthcheck: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ml-endpoints`` command."""
    # As PID 1 in a container, SIGTERM is ignored until a handler exists: stop cleanly even
    # if it arrives during start-up, before the server installs its draining handler.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
