"""End to end: a real Prometheus loads the alert rules, scrapes two live servers, and the right
alerts fire for the one that gets drifted rows, malformed bodies (400) and failing requests (500),
while the one with clean traffic stays silent.

The rules are a test-only copy built by the same code (``rule_groups``) with second-long windows
and ``for:`` durations: the defaults (1 h burn-rate windows, 10 min drift windows) would need an
hour of traffic. Only durations change; every expression, label and threshold is the production
one (objective 99.9 %, burn rate 14.4, 10 % 4xx, half of the drift reports).
"""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from infra.monitoring.config import (
    AlertsConfig,
    Availability,
    BurnRate,
    ClientErrors,
    Drift,
    Latency,
    Loading,
    Readiness,
    Saturation,
)
from infra.monitoring.rules import ALERTS, rule_groups
from tests.infra.monitoring.conftest import Serve, StartPrometheus
from tests.infra.monitoring.harness import wait_for
from tests.infra.monitoring.traffic import Mix, drive

FAST = AlertsConfig(
    availability=Availability(
        burn_rates=(
            BurnRate(long_window="20s", short_window="5s", burn_rate=14.4, severity="critical"),
        )
    ),
    latency=Latency(window="5s", for_="2s"),
    client_errors=ClientErrors(window="5s", for_="2s"),
    drift=Drift(window="5s", for_="2s"),
    readiness=Readiness(for_="5s"),
    loading=Loading(for_="10s"),
    saturation=Saturation(window="5s", for_="2s"),
    evaluation_interval="1s",
)
EXPECTED = {"ModelErrorBudgetBurn", "ModelClientErrorsHigh", "ModelDriftDetected"}


def test_right_alerts_fire_on_a_live_server(
    tmp_path: Path, start_prometheus: StartPrometheus, serve: Serve
) -> None:
    rules = tmp_path / "fast-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(FAST)}))
    prometheus = start_prometheus((rules,))
    bad = serve("alerts", "bad", prometheus, faults=True)
    ok = serve("alerts", "ok", prometheus)

    # bounded: at most 15 s of each mix; per round the bad variant answers 1 of 7 requests with 500,
    # 1 of 7 with 400, and 3 of 7 carry drifted rows
    stop = threading.Event()
    bad_mix = Mix(good=2, batch=0, malformed=1, failing=1, drifted=3)
    loads = [
        threading.Thread(target=drive, args=(bad.url, bad_mix, 15), kwargs={"stop": stop}),
        threading.Thread(
            target=drive, args=(ok.url, Mix(good=4, batch=1), 15), kwargs={"stop": stop}
        ),
    ]
    for load in loads:
        load.start()
    try:

        def firing_for_bad() -> set[str]:
            return {
                a["labels"]["alertname"]
                for a in prometheus.client.alerts()
                if a["state"] == "firing" and a["labels"].get("variant") == "bad"
            }

        fired = wait_for(lambda: firing_for_bad() >= EXPECTED, 30, f"{EXPECTED} firing")
        assert fired
        active = prometheus.client.alerts()
    finally:
        stop.set()
        for load in loads:
            load.join()

    by_variant: dict[str, set[str]] = {}
    for alert in active:
        by_variant.setdefault(alert["labels"].get("variant", ""), set()).add(
            alert["labels"]["alertname"]
        )
    assert by_variant.get("ok", set()) == set(), "clean traffic raised alerts"
    # nothing else for the bad variant: it is fast, ready, loaded and far from saturation
    assert by_variant["bad"] == EXPECTED
    assert set(ALERTS) - EXPECTED == {
        "ModelLatencyHigh",
        "ModelNotReady",
        "ModelStuckLoading",
        "ModelSaturated",
        "ModelRequestsRejected",
    }
