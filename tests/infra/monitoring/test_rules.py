"""The alert rules: valid for Prometheus (``promtool check rules``), each alert firing on a series
that should fire it and silent on one that should not (``promtool test rules`` on
``rules_test.yml``), the plain file equal to the code's defaults, and the config's knobs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from infra.monitoring import RULES_FILE
from infra.monitoring.config import AlertsConfig, Availability, BurnRate, Drift, Saturation
from infra.monitoring.rules import ALERTS, rule_groups, rules_file

UNIT_TESTS = Path(__file__).with_name("rules_test.yml")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; make system-deps)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def check(text: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_file_is_the_default_rules() -> None:
    """``prometheus-rules.yaml`` is what the code builds (``python -m infra.monitoring``)."""
    assert RULES_FILE.read_text() == rules_file()


def test_plain_file_passes_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_alert_fires_on_bad_series_and_stays_silent_on_good_ones() -> None:
    result = promtool("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_cover_every_alert_both_ways() -> None:
    """Each alert has a group with a series meant to stay silent ("ok"), a check before its
    ``for:`` elapses (no alert) and one after (exactly the bad series)."""
    document: dict[str, Any] = yaml.safe_load(UNIT_TESTS.read_text())
    groups = {g["name"]: g for g in document["tests"]}
    assert set(groups) == set(ALERTS)
    for name, group in groups.items():
        assert any('"ok"' in s["series"] for s in group["input_series"]), name
        cases = [c for c in group["alert_rule_test"] if c["alertname"] == name]
        assert any(c["exp_alerts"] == [] for c in cases), name
        firing = [a for c in cases for a in c["exp_alerts"]]
        assert firing, name
        assert all("ok" not in a["exp_labels"].values() for a in firing), name


def test_every_alert_is_in_the_default_rules() -> None:
    alerts = {r["alert"] for g in rule_groups(AlertsConfig()) for r in g["rules"] if "alert" in r}
    assert alerts == set(ALERTS)


def test_scoped_rules_select_only_their_deployment(tmp_path: Path) -> None:
    """A ``PrometheusRule`` per deployment adds matchers to every selector: a model of another
    namespace that is stuck loading does not fire this deployment's alert."""
    scoped = rules_file(AlertsConfig(), matchers='namespace="ml",model=~"iris|wine"')
    check(scoped, tmp_path)
    (tmp_path / "rules.yaml").write_text(scoped)
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {
                                "series": f'model_ready{{namespace="{ns}",model="iris",'
                                f'variant="v",instance="{ns}"}}',
                                "values": "0+0x30",
                            }
                            for ns in ("ml", "other")
                        ],
                        "alert_rule_test": [
                            {
                                "eval_time": "20m",
                                "alertname": "ModelStuckLoading",
                                "exp_alerts": [
                                    {
                                        "exp_labels": {
                                            "severity": "critical",
                                            "namespace": "ml",
                                            "model": "iris",
                                            "variant": "v",
                                            "instance": "ml",
                                        },
                                        "exp_annotations": {
                                            "summary": "ml (iris/v) never finished loading its "
                                            "model",
                                            "description": "No model loaded for 15m: a slow or "
                                            "failing download, a failed load or warm-up (GET "
                                            "/health/ready says why), or a crash loop.",
                                        },
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        )
    )
    result = promtool("test", "rules", str(tmp_path / "test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_knobs_render_valid_rules(tmp_path: Path) -> None:
    """Disabled blocks leave their alerts out; labels, runbook and interval reach every alert."""
    config = AlertsConfig(
        availability=Availability(
            objective=0.99,
            burn_rates=(
                BurnRate(long_window="2h", short_window="10m", burn_rate=10, severity="warning"),
            ),
        ),
        drift=None,
        saturation=Saturation(max_inflight=64),
        labels={"team": "ml-platform"},
        runbook_url="https://runbooks.example.com/ml-endpoints",
        evaluation_interval="15s",
    )
    text = rules_file(config)
    check(text, tmp_path)
    groups = yaml.safe_load(text)["groups"]
    assert all(g["interval"] == "15s" for g in groups)
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert "ModelDriftDetected" not in {a["alert"] for a in alerts}
    assert all(a["labels"]["team"] == "ml-platform" for a in alerts)
    assert all(
        a["annotations"]["runbook_url"]
        == f"https://runbooks.example.com/ml-endpoints#{a['alert'].lower()}"
        for a in alerts
    )
    (burn,) = [a for a in alerts if a["alert"] == "ModelErrorBudgetBurn"]
    assert "> 0.1 and" in burn["expr"]  # 10 x the 1 % budget
    (saturated,) = [a for a in alerts if a["alert"] == "ModelSaturated"]
    assert "* 64)" in saturated["expr"]


def test_short_window_must_be_shorter() -> None:
    with pytest.raises(ValidationError, match="must be shorter than long_window"):
        BurnRate(long_window="5m", short_window="1h", burn_rate=14.4, severity="critical")


def test_durations_are_prometheus_durations() -> None:
    with pytest.raises(ValidationError, match="window"):
        Drift(window="10 minutes")
