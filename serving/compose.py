"""The composition root: the one place where the server is built from its settings.

Each part receives what it uses and hands back what it offers, in the manner of MLServer's
``create_app(settings, data_plane, ...)`` and KServe's ``register_v1_endpoints(app, dataplane)``:

- the model runtime gets the metrics it updates, the observers that see every prediction and
  the hooks it calls when the model is ready or failed to load;
- every wire protocol, drift monitoring, the metrics exposition and the OpenAPI document return
  their routes, each route carrying its own documentation;
- the request recorder publishes a series for every protocol that a registered route speaks;
- the app gets the router, the recorder, the authenticator and its life-cycle hooks;
- on SageMaker and Vertex AI, which never scrape ``/metrics``, each worker starts a cloud signal
  publisher at start-up that reads the same metrics once per interval (``serving.cloud_signals``).

Optional features follow the settings' one failure policy (``serving.settings``): an invalid
value turns the feature off, logged here once per worker, and the server still serves the model.
"""

from __future__ import annotations

import logging

from serving import metrics as metrics_mod
from serving import openapi
from serving.app import ServingApp
from serving.auth import Authenticator
from serving.capture import create_capture
from serving.cloud_signals import SignalPublisher, create_publisher
from serving.http import Router
from serving.metrics import Metrics, RequestRecorder
from serving.monitoring import DriftMonitoring
from serving.protocols import all_routes
from serving.runtime import ModelRuntime, Observer
from serving.settings import Settings

log = logging.getLogger("ml_endpoints.compose")


def create_app(
    settings: Settings | None = None, *, load_before_serving: bool = False
) -> ServingApp:
    """The server for ``settings`` (default: from the environment).

    ``load_before_serving``: lifespan start-up waits for the model, so no connection is accepted
    before it is loaded (a replacement worker must not answer 503 while its siblings are ready).
    Raises ``ValueError`` for an unusable authentication token (the CLI checks it first)."""
    settings = settings or Settings()
    for feature, off_reason in (
        ("drift monitoring", settings.drift.off_reason),
        ("data capture", settings.capture.off_reason),
        ("cloud signals", settings.signals.off_reason),
    ):
        if off_reason is not None:
            log.error("%s is off: %s", feature, off_reason)

    metrics = Metrics(settings.model_name, settings.model_version, settings.variant)
    drift = DriftMonitoring(settings.drift, registry=metrics.registry, labels=metrics.base)
    capture = create_capture(
        settings.capture,
        model=settings.model_name,
        variant=settings.variant,
        registry=metrics.registry,
        labels=metrics.base,
    )
    observers: list[Observer] = [drift.observe]
    if capture is not None:
        observers.insert(0, capture.observe)
    runtime = ModelRuntime(
        settings,
        metrics,
        observers=observers,
        on_ready=[drift.model_ready],
        on_failed=[drift.model_failed],
    )

    routes = [*all_routes(runtime), *drift.routes()]
    spoken = [route.protocol for route in routes if route.protocol is not None]
    recorder = RequestRecorder(metrics, protocols=dict.fromkeys(spoken))
    auth = Authenticator.from_settings(settings)
    router = Router([*routes, recorder.route()])  # raises RouteConflict on a collision
    for route in router.shadowed:
        log.info("%s is not served: the platform configured that path for another route", route)
    router.add(openapi.route(router.routes, auth.protected if auth is not None else frozenset()))

    publishers: list[SignalPublisher] = []

    async def start() -> None:
        directory = metrics_mod.multiprocess_dir()
        if directory is not None:
            metrics_mod.forget_dead_workers(directory)
        publisher = create_publisher(settings, metrics.registry)  # in the worker: its own share
        if publisher is not None:
            publishers.append(publisher)
        runtime.start()
        if load_before_serving:
            await runtime.wait_loaded()

    def close_publishers() -> None:
        recorder.flush()  # what is still recorded belongs to the last interval
        for publisher in publishers:
            publisher.close()  # the last interval, drain included

    shutdown = [runtime.close, drift.close]
    if capture is not None:
        shutdown.append(capture.close)  # flushes every accepted record
    shutdown.append(close_publishers)
    return ServingApp(
        router,
        recorder,
        body_limit=settings.body_limit,
        max_inflight=settings.max_inflight,
        auth=auth,
        on_startup=[start],
        on_drain=[runtime.begin_drain],
        on_shutdown=shutdown,
    )
