"""``kubernetes.monitoring``: the ``PrometheusRule`` next to the ServiceMonitor and the Grafana
dashboard as a ConfigMap for Grafana's sidecar, validated before anything is declared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.k8s.config import load
from infra.k8s.observability import dashboard_uid
from infra.monitoring.dashboard import dashboard, targets
from infra.monitoring.rules import ALERTS
from infra.stack.config import load_stack
from infra.stack.files import StackError, read_stack_file, stack_file
from infra.validation import ConfigError
from tests.infra.k8s.conftest import Render
from tests.infra.k8s.support import AB_VARIANTS, base_config, of_kind, one, validate_strict
from tests.infra.monitoring.test_rules import promtool
from tests.infra.offline_plans import STACKS_DIR

_DURATION = {
    "type": "string",
    "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
    "(([0-9]+)ms)?)$",
}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
PROMETHEUS_RULE_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": _DURATION,
                    "labels": _STRINGS,
                    "limit": {"type": "integer"},
                    "partial_response_strategy": {"type": "string"},
                    "query_offset": _DURATION,
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["expr"],
                            "additionalProperties": False,
                            "properties": {
                                "alert": {"type": "string"},
                                "record": {"type": "string"},
                                "annotations": _STRINGS,
                                "labels": _STRINGS,
                                "expr": {"type": ["integer", "string"]},
                                "for": _DURATION,
                                "keep_firing_for": {**_DURATION, "minLength": 1},
                            },
                        },
                    },
                },
            },
        }
    },
}
"""``spec`` of ``monitoring.coreos.com/v1`` ``PrometheusRule`` as the operator's CRD declares it
(prometheus-operator/prometheus-operator
``example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml``, operator 0.93.0;
types in ``pkg/apis/monitoring/v1/prometheusrule_types.go``), with unknown fields refused as
``kubectl apply --validate=strict`` refuses them. No package ships the CRD schemas for Python."""

MONITORED = base_config(
    variants=AB_VARIANTS,
    gateway={"name": "public"},
    service_monitor={"labels": {"release": "kps"}},
    monitoring={},
)


def _error(config: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(config)
    return caught.value


def test_monitoring_declares_rules_and_dashboard_next_to_the_service_monitor(
    render: Render,
) -> None:
    manifests = render(MONITORED)
    rule = one(manifests, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "models"
    # Selected by the same Prometheus as the ServiceMonitor (kube-prometheus-stack: `release`).
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert one(manifests, "ServiceMonitor")["metadata"]["labels"]["release"] == "kps"
    jsonschema.validate(rule["spec"], PROMETHEUS_RULE_SPEC)
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert set(alerts) == set(ALERTS)  # every alert, with the defaults

    config_map = one(manifests, "ConfigMap")
    validate_strict(config_map)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "models"
    (file_name, text), *others = config_map["data"].items()
    assert not others
    assert file_name.endswith(".json")
    model = json.loads(text)
    assert model["uid"] == "ml-endpoints-models-iris"
    assert targets(model) == targets(dashboard())  # the same panels as the plain file
    current = {v["name"]: v.get("current", {}).get("value") for v in model["templating"]["list"]}
    assert current["namespace"] == "models"
    assert current["model"] == "model"


def test_the_prometheus_rule_spec_is_rejected_when_it_breaks_the_crd_schema() -> None:
    """The schema above is not vacuous: a misspelt key or a bad duration fails it."""
    good = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": "5m"}]}]}
    jsonschema.validate(good, PROMETHEUS_RULE_SPEC)
    for bad in (
        {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "for": "5 min"}]}]},
        {"groups": [{"name": "g", "rules": [{"alert": "A", "exp": "up"}]}]},
        {"groups": [{"rules": []}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, PROMETHEUS_RULE_SPEC)


def test_the_prometheus_rule_passes_promtool(render: Render, tmp_path: Path) -> None:
    """What the operator hands Prometheus (the spec is a rules file) is valid Prometheus rules."""
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(one(render(MONITORED), "PrometheusRule")["spec"]))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_watch_only_this_deployments_series(render: Render, tmp_path: Path) -> None:
    """Two deployments' PrometheusRules land in one Prometheus: the 4xx alert of ``models/iris``
    fires for its own series and stays silent on another namespace's and another model's equal
    series (``promtool test rules``)."""
    spec = one(render(MONITORED), "PrometheusRule")["spec"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(spec))
    series = []
    for namespace, model in (("models", "model"), ("other", "model"), ("models", "another")):
        labels = f'namespace="{namespace}",model="{model}",variant="champion"'
        series += [
            {"series": f"model_predictions_total{{{labels}}}", "values": "0+600x30"},
            {
                "series": f'model_prediction_errors_total{{{labels},code="400"}}',
                "values": "0+300x30",
            },
        ]
    description = (
        "50% of requests over the last 5m were answered 4xx (threshold 10%): callers send what "
        "the model does not accept."
    )
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "ModelClientErrorsHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "namespace": "models",
                                    "model": "model",
                                    "variant": "champion",
                                },
                                "exp_annotations": {
                                    "summary": "model/champion: many requests rejected with 4xx",
                                    "description": description,
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_variants_serving_several_models_are_all_watched(render: Render) -> None:
    variants = [dict(AB_VARIANTS[0], model_name="iris.v3"), dict(AB_VARIANTS[1])]
    rule = one(render({**MONITORED, "variants": variants}), "PrometheusRule")
    selecting = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if "{" in r["expr"]]
    assert len(selecting) > 5
    # The dot is literal in the regex (escaped for RE2 inside the PromQL string).
    for expr in selecting:
        assert expr.count("{") == expr.count('{namespace="models",model=~"iris\\\\.v3|model"')


@pytest.mark.parametrize(
    ("monitoring", "rules", "config_maps"),
    [({"alerts": None}, 0, 1), ({"dashboard": None}, 1, 0), ({}, 1, 1)],
)
def test_each_part_can_be_left_out(
    render: Render, monitoring: dict[str, Any], rules: int, config_maps: int
) -> None:
    manifests = render({**MONITORED, "monitoring": monitoring})
    assert len(of_kind(manifests, "PrometheusRule")) == rules
    assert len(of_kind(manifests, "ConfigMap")) == config_maps


def test_nothing_without_monitoring(render: Render) -> None:
    manifests = render({**MONITORED, "monitoring": None})
    assert len(of_kind(manifests, "ServiceMonitor")) == 1
    assert of_kind(manifests, "PrometheusRule") == []
    assert of_kind(manifests, "ConfigMap") == []


def test_the_dashboard_goes_where_the_sidecar_looks(render: Render) -> None:
    dashboard_config = {
        "labels": {"grafana_dashboard": "ml"},
        "annotations": {"grafana_folder": "Models"},
        "namespace": "monitoring",
    }
    config_map = one(
        render({**MONITORED, "monitoring": {"dashboard": dashboard_config}}), "ConfigMap"
    )
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "ml"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Models"}


def test_long_names_get_a_distinct_uid_within_grafanas_limit() -> None:
    uids = {
        dashboard_uid(load({**MONITORED, "name": name, "namespace": "n" * 63}))
        for name in ("a" * 40, "a" * 39 + "b")
    }
    assert len(uids) == 2
    assert all(len(uid) <= 40 for uid in uids)


def test_monitoring_needs_the_service_monitor() -> None:
    error = _error({**MONITORED, "service_monitor": None})
    assert error.key == "kubernetes.monitoring"
    assert "needs service_monitor" in str(error)


def test_the_saturation_alert_uses_the_servers_limit() -> None:
    error = _error({**MONITORED, "env": {"ML_ENDPOINTS_MAX_INFLIGHT": "64"}})
    assert error.key == "kubernetes.monitoring.alerts.saturation.max_inflight"
    assert "must equal env ML_ENDPOINTS_MAX_INFLIGHT (64)" in str(error)
    assert "got 512" in str(error)
    agreed = {"alerts": {"saturation": {"max_inflight": 64}}}
    assert load({**MONITORED, "env": {"ML_ENDPOINTS_MAX_INFLIGHT": "64"}, "monitoring": agreed})


def test_the_limit_variable_is_the_one_the_server_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.k8s.config import MAX_INFLIGHT_ENV
    from serving.settings import Settings

    monkeypatch.setenv(MAX_INFLIGHT_ENV, "64")
    assert Settings().max_inflight == 64


def test_alert_settings_are_validated_with_their_key() -> None:
    bad = {"alerts": {"latency": {"p99_seconds": 0}}}
    error = _error({**MONITORED, "monitoring": bad})
    assert error.key == "kubernetes.monitoring.alerts.latency.p99_seconds"
    error = _error({**MONITORED, "monitoring": {"dashbord": {}}})
    assert error.key == "kubernetes.monitoring.dashbord"


def test_a_stack_error_names_the_file_and_key() -> None:
    config = read_stack_file(stack_file("prod", STACKS_DIR))
    target = config["ml-endpoints:kubernetes"]
    target["monitoring"] = {"alerts": {"drift": {"share": 2}}}
    with pytest.raises(StackError) as caught:
        load_stack(config, "stacks/Pulumi.prod.yaml")
    assert str(caught.value).startswith(
        "stacks/Pulumi.prod.yaml: ml-endpoints:kubernetes.monitoring.alerts.drift.share: "
    )
    target["monitoring"] = {}
    target.pop("service_monitor")
    with pytest.raises(StackError, match=r"ml-endpoints:kubernetes\.monitoring: needs service_mon"):
        load_stack(config, "stacks/Pulumi.prod.yaml")
