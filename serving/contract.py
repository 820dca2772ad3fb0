"""The serving container's contract with whatever deploys it: names, patterns, port, paths.

``infra/`` deploys the container on SageMaker, Vertex AI and Kubernetes and must set exactly what
the server reads. Both halves import these names from here, so a rename is one edit and a
mismatch cannot be written. Dependency-free on purpose: the Pulumi side imports it without
pulling in the server (numpy, uvicorn, ...), and ``serving`` never imports ``infra``.
"""

from __future__ import annotations

from typing import Final

# -- environment variables the deployer sets on the container ----------------------------------
MODEL_URI_ENV: Final = "MODEL_URI"
"""Where the model is: file, directory, ``.tar.gz``, ``s3://`` or ``gs://``."""
MODEL_NAME_ENV: Final = "MODEL_NAME"
"""Name in OIP/V1 routes and on every metric."""
MODEL_VERSION_ENV: Final = "MODEL_VERSION"
"""Version in OIP routes and on every metric."""
MODEL_SHA256_ENV: Final = "MODEL_SHA256"
"""Expected artifact digest: the server stays not-ready on a mismatch."""
VARIANT_ENV: Final = "ML_ENDPOINTS_VARIANT"
"""A/B variant label on every metric (``champion``, ``challenger``)."""
WORKERS_ENV: Final = "ML_ENDPOINTS_WORKERS"
DRAIN_SECONDS_ENV: Final = "ML_ENDPOINTS_DRAIN_SECONDS"
GRACEFUL_TIMEOUT_ENV: Final = "ML_ENDPOINTS_GRACEFUL_TIMEOUT"
SAGEMAKER_ENDPOINT_ENV: Final = "ML_ENDPOINTS_SAGEMAKER_ENDPOINT"
"""The SageMaker endpoint's name, set by the SageMaker component in CreateModel's ``Environment``
(SageMaker sets no variable naming the endpoint): the ``EndpointName`` dimension of the cloud
signals, and how the server knows it runs on SageMaker."""
SIGNALS_NAMESPACE_ENV: Final = "ML_ENDPOINTS_SIGNALS_NAMESPACE"
"""CloudWatch namespace of the signals (the SageMaker component's ``metrics_namespace``)."""

MODEL_IDENTITY_ENV: Final = frozenset({MODEL_NAME_ENV, MODEL_VERSION_ENV, VARIANT_ENV})
"""What every deployer sets from typed args; a stack's free-form ``env`` may not override it."""

# -- values the server accepts -----------------------------------------------------------------
MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
MODEL_VERSION_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$"
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"

# -- network -----------------------------------------------------------------------------------
PORT: Final = 8080
"""Default port (SageMaker's fixed port; Vertex AI's ``AIP_HTTP_PORT`` default)."""
RUN_AS_USER: Final = 10001
"""The uid requests are served as: the image's ``ML_ENDPOINTS_SERVING_USER`` (it starts as root
only to read the model, ``serving/privileges.py``) and the pod's ``runAsUser``, so that
``runAsNonRoot`` can be verified."""

# -- routes ------------------------------------------------------------------------------------
LIVENESS_PATH: Final = "/health/live"
READINESS_PATH: Final = "/health/ready"
HEALTH_PATH: Final = "/health"
PREDICT_PATH: Final = "/predict"
METRICS_PATH: Final = "/metrics"
DRIFT_PATH: Final = "/drift"
SAGEMAKER_PING_PATH: Final = "/ping"
SAGEMAKER_INVOCATIONS_PATH: Final = "/invocations"
VERTEX_PREDICT_ROUTE: Final = "/vertex/predict"
"""``AIP_PREDICT_ROUTE`` the Vertex component declares: no other protocol of the server uses it."""
VERTEX_HEALTH_ROUTE: Final = "/vertex/health"
"""``AIP_HEALTH_ROUTE`` the Vertex component declares."""

# -- Prometheus metrics others query (autoscalers, dashboards, alerts) -------------------------
INFLIGHT_METRIC: Final = "model_inflight_requests"
"""Gauge of prediction requests in progress per worker (HPA Pods metric via an adapter)."""
READY_METRIC: Final = "model_ready"
PREDICTIONS_METRIC: Final = "model_predictions"
"""Counter of prediction requests by ``protocol`` and ``status`` (success, error)."""
ERRORS_METRIC: Final = "model_prediction_errors"
"""Counter of failed prediction requests by HTTP status ``code``: a code never answered has no
series, so ratios over it need ``or ... * 0`` (``infra.monitoring.queries.error_ratio``)."""
LATENCY_METRIC: Final = "model_prediction_latency_seconds"
BATCH_ROWS_METRIC: Final = "model_batch_size_rows"
"""Histogram of rows per model call (adaptive micro-batching)."""
QUEUE_REJECTIONS_METRIC: Final = "model_queue_rejections"
LOAD_SECONDS_METRIC: Final = "model_load_seconds"
"""Gauge set once the model is loaded and warm: absent before, so ``unless`` finds stuck loads."""
WORKERS_METRIC: Final = "model_server_workers"
"""Gauge of live worker processes (summed over workers)."""
DRIFT_DETECTED_METRIC: Final = "model_drift_detected"
DRIFT_P_VALUE_METRIC: Final = "model_drift_p_value"
"""Gauge per ``feature`` and ``test`` of the latest drift report."""
DRIFT_WINDOW_ROWS_METRIC: Final = "model_drift_window_rows"

# Cloud signals: the members each interval's line carries (CloudWatch EMF metric names on
# SageMaker, jsonPayload keys in Cloud Logging on Vertex AI), written by
# serving/cloud_signals.py and read by the alarms and alerts infra declares
# (infra/aws/signal_alarms.py, infra/gcp/signal_alerts.py).
SIGNAL_REQUESTS: Final = "Requests"
SIGNAL_SERVER_ERRORS: Final = "ServerErrors"
SIGNAL_CLIENT_ERRORS: Final = "ClientErrors"
SIGNAL_LATENCY_P50: Final = "LatencyP50"
SIGNAL_LATENCY_P99: Final = "LatencyP99"
SIGNAL_QUEUE_REJECTIONS: Final = "QueueRejections"
SIGNAL_DRIFT_DETECTED: Final = "DriftDetected"
SIGNAL_READY: Final = "Ready"
SIGNAL_ENDPOINT_DIMENSION: Final = "EndpointName"
"""CloudWatch dimensions, named as SageMaker's own ``AWS/SageMaker`` metrics name them."""
SIGNAL_VARIANT_DIMENSION: Final = "VariantName"
SIGNALS_KIND: Final = "ml-endpoints-signals"
"""Marks a signal line for log filters (Cloud Logging log-based metrics, Logs Insights)."""
