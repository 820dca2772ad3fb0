"""Server settings from CLI flags, ``ML_ENDPOINTS_*`` variables and the platforms' own variables.

Platform variables (``AIP_*`` on Vertex AI, ``SAGEMAKER_*`` on SageMaker) are read, never required:
the same image runs unchanged everywhere.

Optional features nest inside :class:`Settings` (``drift``: ``ML_ENDPOINTS_DRIFT_*``,
``capture``: ``ML_ENDPOINTS_CAPTURE_*``, ``signals``: ``ML_ENDPOINTS_SIGNALS_*``) under one failure
policy: an invalid value of an optional
feature turns that feature off and never stops the server; ``off_reason`` then names the variable,
the value and what is allowed, and the server logs it at start-up and answers it on the feature's
route. An invalid core setting (everything else) refuses to start (``ml-endpoints serve`` exits 2
naming it).
"""

from __future__ import annotations

import importlib.util
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving import contract

MB = 1024 * 1024
SAGEMAKER_MAX_BODY = 6 * MB
VERTEX_MAX_BODY = 1536 * 1024
SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class OutputKind(StrEnum):
    """What instance-style protocols (SageMaker, Vertex, V1) return per row."""

    LABEL = "label"
    PROBABILITIES = "probabilities"


PROFILE_FILE = "drift_reference.json"
"""The drift profile the server looks for next to the model."""


class SageMakerJson(StrEnum):
    """The shape of JSON answers on ``/invocations``."""

    LIST = "list"  # a bare list, as SageMaker's scikit-learn and framework containers answer
    PREDICTIONS = "predictions"  # {"predictions": [...]}, as Vertex AI and KServe V1 answer


class AnswerType(StrEnum):
    """Media types ``/invocations`` answers in (``serving.codecs.OUTPUT_TYPES``)."""

    JSON = "application/json"
    CSV = "text/csv"
    NPY = "application/x-npy"
    JSONLINES = "application/jsonlines"


class DriftSettings(BaseModel):
    """``ML_ENDPOINTS_DRIFT_*``: the streaming drift monitor (``serving.monitoring``)."""

    enabled: bool = True
    profile: str | None = Field(None, description=f"Profile path (default: {PROFILE_FILE}).")
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    window_rows: Annotated[int, Field(ge=10)] = 1000
    window_seconds: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Roll windows by time instead of by rows."
    )
    buffer_rows: Annotated[int, Field(ge=1)] = 100_000
    report_seconds: Annotated[float, Field(gt=0)] = 1.0
    off_reason: str | None = Field(
        None, description="Set by validation: the invalid setting that turned the monitor off."
    )

    @property
    def active(self) -> bool:
        """Turned on and validly configured."""
        return self.enabled and self.off_reason is None


class CaptureSettings(BaseModel):
    """``ML_ENDPOINTS_CAPTURE_*``: data capture (``serving.capture``); off without a destination."""

    destination: str | None = Field(None, description="Local directory or s3://bucket/prefix.")
    sample_percent: Annotated[float, Field(ge=0, le=100)] = 100.0
    max_file_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    max_file_seconds: Annotated[float, Field(gt=0)] = 3600.0
    buffer_records: Annotated[int, Field(ge=1)] = 100_000
    off_reason: str | None = Field(
        None, description="Set by validation: the invalid setting that turned capture off."
    )

    @field_validator("destination")
    @classmethod
    def _writable_kind(cls, value: str | None) -> str | None:
        if value is None or not value.startswith("s3://"):
            return value
        if not value.removeprefix("s3://").partition("/")[0]:
            raise ValueError(f"capture destination {value!r} names no bucket")
        if importlib.util.find_spec("boto3") is None:
            raise ValueError(
                f"capture destination {value} needs boto3: pip install 'ml-endpoints[aws]'"
            )
        return value

    @property
    def active(self) -> bool:
        """A destination is set and every setting is valid."""
        return bool(self.destination) and self.off_reason is None


class Platform(StrEnum):
    """Where the server runs, as far as it matters to what it does (:attr:`Settings.platform`)."""

    SAGEMAKER = "sagemaker"
    VERTEX = "vertex"


class SignalMode(StrEnum):
    """How the cloud signals (``serving.cloud_signals``) are written to stdout."""

    AUTO = "auto"  # EMF on SageMaker, Cloud Logging lines on Vertex AI, nothing elsewhere
    OFF = "off"
    EMF = "emf"  # CloudWatch embedded metric format, wherever the server runs
    CLOUD_LOGGING = "cloud_logging"  # structured JSON lines Cloud Logging parses


class SignalSettings(BaseModel):
    """``ML_ENDPOINTS_SIGNALS_*``: the signals clouds that never scrape ``/metrics`` alarm on,
    one JSON line per worker and interval on stdout."""

    mode: SignalMode = SignalMode.AUTO
    interval_seconds: Annotated[float, Field(ge=1, le=3600)] = Field(
        60.0,
        description="Seconds between lines: CloudWatch's standard resolution is a minute, and "
        "alarms evaluate whole periods.",
    )
    namespace: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        "ml-endpoints", description="CloudWatch namespace of the EMF metrics."
    )
    off_reason: str | None = Field(
        None, description="Set by validation: the invalid setting that turned the signals off."
    )


#: Optional features by ``Settings`` field: their settings and their variables' prefix.
_FEATURES: dict[str, tuple[type[DriftSettings | CaptureSettings | SignalSettings], str]] = {
    "drift": (DriftSettings, "ML_ENDPOINTS_DRIFT_"),
    "capture": (CaptureSettings, "ML_ENDPOINTS_CAPTURE_"),
    "signals": (SignalSettings, "ML_ENDPOINTS_SIGNALS_"),
}


class Settings(BaseSettings):
    """Everything the server reads at start-up. Field docs name the variables."""

    # ML_ENDPOINTS_DRIFT_ALPHA -> drift.alpha: split once after the prefix, so that field names
    # keep their underscores (ML_ENDPOINTS_DRIFT_WINDOW_ROWS -> drift.window_rows)
    model_config = SettingsConfigDict(
        env_prefix="ML_ENDPOINTS_",
        populate_by_name=True,
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    model_uri: str | None = Field(
        None,
        validation_alias=_env("ML_ENDPOINTS_MODEL_URI", contract.MODEL_URI_ENV),
        description="Model file, directory, .tar.gz, s3:// or gs:// URI.",
    )
    model_name: str = Field(
        "model",
        validation_alias=_env("ML_ENDPOINTS_MODEL_NAME", contract.MODEL_NAME_ENV),
        pattern=contract.MODEL_NAME_PATTERN,
    )
    model_version: str = Field(
        "1",
        validation_alias=_env("ML_ENDPOINTS_MODEL_VERSION", contract.MODEL_VERSION_ENV),
        pattern=contract.MODEL_VERSION_PATTERN,
    )
    model_sha256: str | None = Field(
        None,
        validation_alias=_env("ML_ENDPOINTS_MODEL_SHA256", contract.MODEL_SHA256_ENV),
        pattern=r"^[0-9a-fA-F]{64}$",
    )
    variant: str = Field(
        "default",
        validation_alias=_env(contract.VARIANT_ENV, "VARIANT_NAME"),
        description="A/B variant label put on every metric.",
    )
    handler: str | None = Field(
        None,
        validation_alias=_env("ML_ENDPOINTS_HANDLER", "SAGEMAKER_PROGRAM"),
        description="Python file or module with model_fn/input_fn/predict_fn/output_fn.",
    )
    skops_trusted: str = Field(
        "",
        description="Comma-separated types a model.skops may hold beyond skops' defaults.",
    )
    output: OutputKind = OutputKind.LABEL
    sagemaker_json: SageMakerJson = Field(
        SageMakerJson.LIST,
        description="JSON answers on /invocations: a bare list, or {'predictions': [...]}.",
    )
    serving_user: str | None = Field(
        None,
        description="UID[:GID] to serve as when started as root, after reading the model "
        "(the image sets 10001:10001); unset: no change of user.",
    )

    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        1,
        validation_alias=_env("ML_ENDPOINTS_WORKERS", "SAGEMAKER_MODEL_SERVER_WORKERS"),
    )
    request_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(
        55.0,
        validation_alias=_env("ML_ENDPOINTS_REQUEST_TIMEOUT", "SAGEMAKER_MODEL_SERVER_TIMEOUT"),
        description="Per-request deadline in seconds (below SageMaker's 60 s by default).",
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] | None = None
    read_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(
        30.0,
        description="Seconds a request may take to arrive whole (slow clients get 408).",
    )
    max_header_bytes: Annotated[int, Field(ge=1024, le=1 << 20)] = Field(
        64 * 1024,
        description="Largest request header block (431 above it).",
    )
    drain_seconds: Annotated[float, Field(ge=0, le=300)] = Field(
        3.0,
        description="After SIGTERM: seconds to keep serving while not ready (pre-stop window).",
    )
    graceful_timeout: Annotated[float, Field(ge=0, le=3600)] = Field(
        20.0,
        description="After the drain window: seconds to finish in-flight requests.",
    )
    compile: bool = Field(
        True,
        description="Run scikit-learn models on ONNX Runtime when faster and equal.",
    )
    model_threads: Annotated[int, Field(ge=1, le=256)] = Field(
        1,
        description="Threads per worker for the model's math (OpenMP/BLAS/ONNX Runtime).",
    )
    max_batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    max_batch_wait_us: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    max_queue: Annotated[int, Field(ge=1)] = 1024
    max_inflight: Annotated[int, Field(ge=1)] = Field(
        512,
        description="Prediction requests in flight per worker before 503 + Retry-After.",
    )
    auth_token: str | None = Field(None, description="Token for the API routes (prefer _FILE).")
    auth_token_file: str | None = Field(None, description="File holding the API token.")
    auth_health: bool = Field(False, description="Require the token on health routes too.")
    auth_metrics: bool = Field(False, description="Require the token on /metrics too.")
    cache_dir: str = "/tmp/ml-endpoints"
    sagemaker_model_dir: str = SAGEMAKER_MODEL_DIR
    log_level: str = "info"
    access_log: bool = False

    # Platform-set variables, read as the platforms define them.
    sagemaker_bind_to_port: int | None = Field(
        None,
        validation_alias=_env("SAGEMAKER_BIND_TO_PORT"),
    )
    sagemaker_default_accept: AnswerType | None = Field(
        None,
        validation_alias=_env("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
        description="Answer type when a request to /invocations has no Accept (or */*).",
    )
    aip_mode: str | None = Field(None, validation_alias=_env("AIP_MODE"))
    aip_http_port: int | None = Field(None, validation_alias=_env("AIP_HTTP_PORT"))
    aip_health_route: str | None = Field(None, validation_alias=_env("AIP_HEALTH_ROUTE"))
    aip_predict_route: str | None = Field(None, validation_alias=_env("AIP_PREDICT_ROUTE"))
    aip_storage_uri: str | None = Field(None, validation_alias=_env("AIP_STORAGE_URI"))
    aip_endpoint_id: str | None = Field(None, validation_alias=_env("AIP_ENDPOINT_ID"))
    aip_deployed_model_id: str | None = Field(None, validation_alias=_env("AIP_DEPLOYED_MODEL_ID"))
    sagemaker_endpoint: str | None = Field(
        None,
        validation_alias=_env(contract.SAGEMAKER_ENDPOINT_ENV),
        description="The SageMaker endpoint's name (the SageMaker component sets it).",
    )

    drift: DriftSettings = DriftSettings()
    capture: CaptureSettings = CaptureSettings()
    signals: SignalSettings = SignalSettings()

    @field_validator("drift", "capture", "signals", mode="wrap")
    @classmethod
    def _optional_feature(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> DriftSettings | CaptureSettings | SignalSettings:
        """The failure policy of optional features: invalid -> off, saying why."""
        try:
            feature: DriftSettings | CaptureSettings | SignalSettings = handler(value)
        except ValidationError as exc:
            assert info.field_name is not None
            kind, prefix = _FEATURES[info.field_name]
            reasons = []
            for error in exc.errors():
                key = "_".join(str(part) for part in error["loc"]).upper()
                variable = prefix + key if key else prefix.rstrip("_")
                reasons.append(f"invalid {variable}={error.get('input')!r}: {error['msg']}")
            return kind(off_reason="; ".join(reasons))
        return feature

    @field_validator("serving_user")
    @classmethod
    def _numeric_user(cls, value: str | None) -> str | None:
        from serving.privileges import ServingUser

        if value is not None:
            ServingUser.parse(value)
        return value

    @field_validator("aip_health_route", "aip_predict_route")
    @classmethod
    def _route_is_absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @property
    def resolved_port(self) -> int:
        """``--port``, then ``SAGEMAKER_BIND_TO_PORT``, then ``AIP_HTTP_PORT``, then 8080."""
        for port in (self.port, self.sagemaker_bind_to_port, self.aip_http_port):
            if port is not None:
                return port
        return contract.PORT

    @property
    def platform(self) -> Platform | None:
        """Vertex AI when it says so (``AIP_MODE=PREDICTION``, which Vertex sets on every
        prediction container); SageMaker when the SageMaker component named the endpoint
        (:data:`~serving.contract.SAGEMAKER_ENDPOINT_ENV`): SageMaker hosting sets the variables
        of CreateModel's ``Environment`` and no variable of its own that says where the container
        runs (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html).
        ``None`` elsewhere (Kubernetes, a laptop)."""
        if self.aip_mode == "PREDICTION":
            return Platform.VERTEX
        if self.sagemaker_endpoint:
            return Platform.SAGEMAKER
        return None

    @property
    def body_limit(self) -> int:
        """6 MB (SageMaker) unless set; 1.5 MB when Vertex AI runs us (``AIP_MODE=PREDICTION``)."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return VERTEX_MAX_BODY if self.aip_mode == "PREDICTION" else SAGEMAKER_MAX_BODY

    @property
    def skops_trusted_types(self) -> tuple[str, ...]:
        """``skops_trusted`` split on commas, blanks dropped."""
        return tuple(name.strip() for name in self.skops_trusted.split(",") if name.strip())

    @property
    def model_source(self) -> str | None:
        """The model location: ``--model``/``MODEL_URI``, ``AIP_STORAGE_URI``, ``/opt/ml/model``.

        ``None`` means: serve the bundled demo model.
        """
        from pathlib import Path

        if self.model_uri:
            return self.model_uri
        if self.aip_storage_uri:
            return self.aip_storage_uri
        sagemaker_dir = Path(self.sagemaker_model_dir)
        if sagemaker_dir.is_dir() and any(sagemaker_dir.iterdir()):
            return str(sagemaker_dir)
        return None
