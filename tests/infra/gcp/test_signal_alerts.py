"""Vertex alert policies' PromQL, evaluated by promtool on series named as Cloud Monitoring
names the log-based metrics (https://cloud.google.com/monitoring/promql/promql-mapping): each
policy fires for a variant whose signal lines say so and stays silent for a healthy one; and the
log metrics extract members the container's Cloud Logging lines carry."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.gcp.config import VertexAlertsArgs, vertex_args_from_config
from infra.gcp.signal_alerts import (
    RESOURCE_TYPE,
    alert_queries,
    log_filter,
    log_metrics,
    promql_name,
)
from infra.monitoring.config import AlertsConfig, seconds
from infra.stack.mocks import RecordingMocks
from infra.validation import ConfigError
from serving import cloud_signals as cs
from tests.infra.gcp.conftest import ENDPOINT_ID, PROJECT, vertex_config
from tests.infra.gcp.test_vertex_component import declare

ENDPOINT = "churn"


def test_promql_names_follow_cloud_monitorings_mapping() -> None:
    assert (
        promql_name("logging.googleapis.com/user/ml-endpoints/churn/requests")
        == "logging_googleapis_com:user_ml_endpoints_churn_requests"
    )
    assert promql_name("compute.googleapis.com/instance/cpu/utilization") == (
        "compute_googleapis_com:instance_cpu_utilization"
    )  # the documentation's own example


def test_log_metrics_extract_members_of_the_containers_lines() -> None:
    entry = cs.cloud_logging_entry(
        cs.IntervalSignals(100, 2, 3, 1.0, 9.0, 0, 1, 1), {"model": "churn", "variant": "green"}
    )
    for metric in log_metrics(ENDPOINT).values():
        assert metric.member in entry
    assert entry["kind"] == cs.KIND
    assert f'jsonPayload.kind="{cs.KIND}"' in log_filter("123")
    assert 'resource.labels.endpoint_id="123"' in log_filter("123")


def series(metric: str, variant: str, values: str) -> dict[str, str]:
    name = log_metrics(ENDPOINT)[metric].promql
    return {
        "series": f'{name}{{monitored_resource="{RESOURCE_TYPE}",variant="{variant}"}}',
        "values": values,
    }


def test_policies_fire_on_bad_lines_and_stay_silent_on_good_ones(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; make system-deps)")
    queries = alert_queries(ENDPOINT, AlertsConfig())
    rules = {
        "groups": [
            {
                "name": "vertex",
                "rules": [
                    {"alert": f"q{i}", "expr": q.query, "for": q.duration}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    names = {q.name: f"q{i}" for i, q in enumerate(queries)}
    # one line a minute per variant: "bad" has 10 % 5xx, 20 % 4xx, p99 800 ms and drift in
    # every report; "ok" none of that. Distribution metrics: cumulative _sum and _count.
    input_series = [
        series("requests", "bad", "0+100x180"),
        series("server_errors", "bad", "0+10x180"),
        series("client_errors", "bad", "0+20x180"),
        {**series("latency_p99", "bad", "0+800x180")},
        {**series("drift", "bad", "0+1x180")},
        series("requests", "ok", "0+100x180"),
        series("server_errors", "ok", "0+0x180"),
        series("client_errors", "ok", "0+1x180"),
        series("latency_p99", "ok", "0+5x180"),
        series("drift", "ok", "0+0x180"),
    ]
    for signal in ("latency_p99", "drift"):  # one value per line: _count grows by one
        for variant in ("bad", "ok"):
            name = log_metrics(ENDPOINT)[signal].promql
            input_series.append(
                {
                    "series": f'{name}_count{{monitored_resource="{RESOURCE_TYPE}",'
                    f'variant="{variant}"}}',
                    "values": "0+1x180",
                }
            )
    for item in input_series:  # the _sum suffix for the summed values
        if "_count{" not in item["series"]:
            item["series"] = item["series"].replace("{", "_sum{", 1)
    expected = {
        f"{ENDPOINT}: 5xx burn rate 14.4x (1h/5m)": True,
        f"{ENDPOINT}: p99 latency": True,
        f"{ENDPOINT}: 4xx ratio": True,
        f"{ENDPOINT}: input drift": True,
    }
    tests = [
        {
            "alertname": names[name],
            "eval_time": "170m",
            "exp_alerts": [{"exp_labels": {"variant": "bad"}}] if fires else [],
        }
        for name, fires in expected.items()
    ]
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": [
                    {"interval": "1m", "input_series": input_series, "alert_rule_test": tests}
                ],
            }
        )
    )
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "test.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- declared by the VertexEndpoint component (``vertex.alerts``) ------------------------------

METRIC = "gcp:logging/metric:Metric"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
CHANNEL = f"projects/{PROJECT}/notificationChannels/123"


def declared(mocks: RecordingMocks, type_: str) -> list[Any]:
    return [r for r in mocks.resources if r.type == type_]


def test_alerts_declare_a_log_metric_per_signal_and_a_policy_per_query(
    pulumi_mocks: RecordingMocks,
) -> None:
    """pulumi-gcp's ``logging.Metric`` (distribution: value extractor and bucket options
    required) and ``monitoring.AlertPolicy`` with ``conditionPrometheusQueryLanguage``
    (``duration`` a protobuf Duration in seconds): sdk/python/pulumi_gcp/logging/metric.py,
    monitoring/_inputs.py of pulumi-gcp 10.2, as installed."""
    alerts = {"labels": {"team": "ml"}, "notification_channels": [CHANNEL]}
    declare(alerts=alerts)
    (component,) = declared(pulumi_mocks, "ml-endpoints:gcp:VertexEndpoint")
    metrics = declared(pulumi_mocks, METRIC)
    signal_name = "test-churn"  # the mocks' stack, then the component's name
    expected = log_metrics(signal_name)
    assert sorted(m.inputs["name"] for m in metrics) == sorted(m.name for m in expected.values())
    members = {m.name: m.member for m in expected.values()}
    for metric in metrics:
        inputs = metric.inputs
        assert inputs["filter"] == log_filter(ENDPOINT_ID)
        assert inputs["valueExtractor"] == f"EXTRACT(jsonPayload.{members[inputs['name']]})"
        assert inputs["labelExtractors"] == {"variant": "EXTRACT(jsonPayload.variant)"}
        descriptor = inputs["metricDescriptor"]
        assert (descriptor["metricKind"], descriptor["valueType"]) == ("DELTA", "DISTRIBUTION")
        assert descriptor["labels"][0]["key"] == "variant"
        assert inputs["bucketOptions"]["exponentialBuckets"]["numFiniteBuckets"] == 40
        assert metric.parent == component.urn

    policies = {p.inputs["displayName"]: p for p in declared(pulumi_mocks, POLICY)}
    queries = alert_queries(signal_name, VertexAlertsArgs(**alerts))
    assert sorted(policies) == sorted(q.name for q in queries)
    metric_names = [promql_name(f"logging.googleapis.com/user/{m.inputs['name']}") for m in metrics]
    for query in queries:
        policy = policies[query.name]
        (condition,) = policy.inputs["conditions"]
        promql = condition["conditionPrometheusQueryLanguage"]
        assert promql["query"] == query.query
        assert promql["duration"] == f"{seconds(query.duration):.0f}s"
        assert promql["labels"] == {"team": "ml"}
        assert policy.inputs["notificationChannels"] == [CHANNEL]
        assert policy.inputs["combiner"] == "OR"
        assert policy.inputs["severity"] in ("CRITICAL", "WARNING")
        # The policy asks for the metrics the component declares, under their PromQL names.
        assert any(name in query.query for name in metric_names)
        assert {m.urn for m in metrics} <= set(policy.dependencies)
    burn = policies["test-churn: 5xx burn rate 14.4x (1h/5m)"]
    assert burn.inputs["conditions"][0]["conditionPrometheusQueryLanguage"]["duration"] == "120s"


def test_no_alerts_no_metrics(pulumi_mocks: RecordingMocks) -> None:
    declare()
    assert declared(pulumi_mocks, METRIC) == []
    assert declared(pulumi_mocks, POLICY) == []


@pytest.mark.parametrize(
    ("alerts", "key", "message"),
    [
        ({"readiness": {}}, "vertex.alerts.readiness", "not an alert policy on Vertex AI"),
        (
            {"notification_channels": ["123"]},
            "vertex.alerts.notification_channels[0]",
            "must be projects/PROJECT/notificationChannels/ID",
        ),
        ({"latency": {"window": "5"}}, "vertex.alerts.latency.window", "pattern"),
    ],
)
def test_alert_settings_are_checked_with_their_key(
    alerts: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        vertex_args_from_config(vertex_config(alerts=alerts))
    assert caught.value.key == key
    assert message in str(caught.value)


# -- the metrics' filter and extractors against the entries Cloud Logging makes of the lines ----

#: Top-level members of a JSON line that Cloud Logging's agents take out of the object into
#: LogEntry fields instead of ``jsonPayload`` ("Special JSON fields in messages",
#: https://cloud.google.com/logging/docs/structured-logging; the same list in fluent-bit's
#: pipeline/outputs/stackdriver_special_fields.md): ``severity``, the timestamps, ``httpRequest``
#: and every ``logging.googleapis.com/`` key. ``message`` stays in ``jsonPayload.message``.
SPECIAL_FIELDS = frozenset(
    {"severity", "httpRequest", "time", "timestamp", "timestampSeconds", "timestampNanos"}
)
SPECIAL_PREFIX = "logging.googleapis.com/"
CONTAINER_LOG = "aiplatform.googleapis.com%2Fprediction_container"


def container_log_entry(line: bytes, endpoint_id: str, deployed_model_id: str) -> dict[str, Any]:
    """The LogEntry Vertex AI's container logging makes of one stdout line of a deployed model.

    - Resource: the monitored resource ``aiplatform.googleapis.com/Endpoint`` with labels
      ``resource_container``, ``location``, ``endpoint_id`` (Cloud Monitoring's resource list,
      https://cloud.google.com/monitoring/api/resources#tag_aiplatform.googleapis.com/Endpoint).
    - stdout and stderr go to Cloud Logging, on by default on the v1 API
      (https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging).
    - A JSON object line is a structured entry: its members are ``jsonPayload`` less the
      special fields above (https://cloud.google.com/logging/docs/structured-logging); any other
      line arrives as ``jsonPayload.message``. The log name and the ``deployed_model_id`` /
      ``replica_id`` entry labels are as real entries show them (not stated by Google's pages).
    """
    import orjson

    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        document = {"message": line.decode().rstrip("\n")}
    payload = {
        key: value
        for key, value in document.items()
        if key not in SPECIAL_FIELDS and not key.startswith(SPECIAL_PREFIX)
    }
    return {
        "logName": f"projects/{PROJECT}/logs/{CONTAINER_LOG}",
        "resource": {
            "type": "aiplatform.googleapis.com/Endpoint",
            "labels": {
                "resource_container": f"projects/{PROJECT}",
                "location": "us-central1",
                "endpoint_id": endpoint_id,
            },
        },
        "labels": {"deployed_model_id": deployed_model_id, "replica_id": "predictor-0"},
        "severity": document.get("severity", "INFO"),
        "jsonPayload": payload,
    }


_CLAUSE = re.compile(r'^([A-Za-z_][\w.]*)="((?:[^"\\]|\\.)*)"$')
_EXTRACT = re.compile(r"^EXTRACT\(([A-Za-z_][\w.]*)\)$")


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def matches(log_filter_: str, entry: dict[str, Any]) -> bool:
    """The Logging query language's ``FIELD="VALUE" AND ...`` on ``entry`` (every clause the
    metrics use; anything else fails the test rather than being guessed at)."""
    for clause in log_filter_.split(" AND "):
        found = _CLAUSE.match(clause.strip())
        assert found, f"clause {clause!r} is outside what this test evaluates"
        path, expected = found.groups()
        actual = _field(entry, path)
        if actual is None or str(actual) != expected:
            return False
    return True


def extract(extractor: str, entry: dict[str, Any]) -> Any:
    found = _EXTRACT.match(extractor)
    assert found, f"extractor {extractor!r} is outside what this test evaluates"
    return _field(entry, found.group(1))


def test_declared_metrics_select_and_read_a_vertex_servers_lines(
    pulumi_mocks: RecordingMocks, start_server: Any
) -> None:
    """The server, started as Vertex AI starts a deployed model (``AIP_ENDPOINT_ID`` and
    ``AIP_DEPLOYED_MODEL_ID`` set by Vertex AI, custom-container-requirements; the variant from
    the component), writes lines whose Cloud Logging entries every log-based metric the
    component declares for that endpoint selects, reading the counts the server served. Lines of
    another endpoint and the server's other output are not selected."""
    from tests.serving.test_cloud_signals import REQUESTS, ROW, serve_requests, signal_lines

    declare(alerts={})
    metrics = [r.inputs for r in declared(pulumi_mocks, METRIC)]
    assert len(metrics) == len(log_metrics("x"))

    deployed_model_id = "6677"
    server = start_server(
        env={
            "AIP_MODE": "PREDICTION",
            "AIP_ENDPOINT_ID": ENDPOINT_ID,
            "AIP_DEPLOYED_MODEL_ID": deployed_model_id,
            "ML_ENDPOINTS_VARIANT": "champion",
            "ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS": "1",
            "ML_ENDPOINTS_DRAIN_SECONDS": "0",
        },
    )
    path = f"/v1/endpoints/{ENDPOINT_ID}/deployedModels/{deployed_model_id}:predict"
    serve_requests(server, path, {"instances": [ROW]})
    assert server.stop() == 0
    lines = signal_lines(server)
    assert lines, server.log()
    entries = [container_log_entry(line, ENDPOINT_ID, deployed_model_id) for line in lines]

    totals: dict[str, float] = {}
    for metric in metrics:
        selected = [e for e in entries if matches(metric["filter"], e)]
        assert selected == entries, (metric["name"], metric["filter"], entries[0])
        for entry in selected:
            assert extract(metric["labelExtractors"]["variant"], entry) == "champion"
            value = extract(metric["valueExtractor"], entry)
            if value is not None:
                totals[metric["name"]] = totals.get(metric["name"], 0.0) + float(value)
    names = {key: m.name for key, m in log_metrics("test-churn").items()}
    assert totals[names["requests"]] == REQUESTS
    assert totals[names["client_errors"]] == REQUESTS // 10
    assert totals[names["server_errors"]] == 0
    assert totals[names["latency_p99"]] > 0

    elsewhere = [container_log_entry(line, "9999", deployed_model_id) for line in lines]
    assert server.log_path is not None
    other_output = [
        container_log_entry(line, ENDPOINT_ID, deployed_model_id)
        for line in server.log_path.read_bytes().splitlines()
        if cs.KIND.encode() not in line
    ]
    assert other_output, "the server wrote nothing but signal lines?"
    for metric in metrics:
        assert not any(matches(metric["filter"], e) for e in elsewhere + other_output)


def test_no_extracted_member_is_a_field_cloud_logging_takes_out_of_the_payload() -> None:
    """A member named like a special field (``severity``, ``time``, ``logging.googleapis.com/…``)
    would never reach ``jsonPayload`` and its metric would stay empty."""
    members = {m.member for m in log_metrics(ENDPOINT).values()} | {"variant", "kind"}
    assert not {m for m in members if m in SPECIAL_FIELDS or m.startswith(SPECIAL_PREFIX)}
