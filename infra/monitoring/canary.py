"""Canary watch: after a weight change, compare the challenger with its champion in Prometheus.

Both variants serve the same traffic mix at the same time, so the champion is the baseline: the
challenger is *worse* when its 5xx or 4xx ratio exceeds the champion's by more than the allowed
increase, its p99 latency exceeds the champion's by more than the allowed factor, its drift
monitor keeps finding drift the champion's does not, or none of its instances is ready. The watch
looks every ``poll`` during ``window`` (since it began, so older traffic never counts) and stops
early once a challenger with enough requests fails on readiness or error ratios; latency and
drift are judged on the whole window. With too few challenger requests at the end the verdict is
*inconclusive*, never a pass. Exit codes: 0 pass, 1 worse, 3 inconclusive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.monitoring import queries as q
from infra.monitoring.config import CanaryConfig, seconds
from infra.monitoring.prometheus import PrometheusClient

PASS, WORSE, INCONCLUSIVE = 0, 1, 3


@dataclass(frozen=True)
class Signals:
    """One variant over the window. ``None``: not measurable (no requests, no drift report)."""

    variant: str
    requests: float
    server_error_ratio: float | None
    client_error_ratio: float | None
    p99_seconds: float | None
    drift_share: float | None
    ready: int
    instances: int


@dataclass
class Verdict:
    """The comparison: reasons the challenger is worse, or why no verdict is possible."""

    champion: Signals
    challenger: Signals
    window_seconds: float
    worse: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.worse:
            return WORSE
        return INCONCLUSIVE if self.inconclusive else PASS

    def report(self) -> str:
        """A table of both variants' signals and the verdict with its reasons."""
        ch, cl = self.champion, self.challenger
        rows = [
            ("requests", f"{ch.requests:.0f}", f"{cl.requests:.0f}"),
            ("5xx ratio", _pct(ch.server_error_ratio), _pct(cl.server_error_ratio)),
            ("4xx ratio", _pct(ch.client_error_ratio), _pct(cl.client_error_ratio)),
            ("p99 latency", _ms(ch.p99_seconds), _ms(cl.p99_seconds)),
            ("drift reports", _pct(ch.drift_share), _pct(cl.drift_share)),
            ("ready", f"{ch.ready}/{ch.instances}", f"{cl.ready}/{cl.instances}"),
        ]
        width = max(len(ch.variant), len(cl.variant), 10)
        lines = [
            f"canary over the last {self.window_seconds:.0f} s: "
            f"{cl.variant} (challenger) vs {ch.variant} (champion)",
            f"  {'signal':<14} {ch.variant:>{width}} {cl.variant:>{width}}",
        ]
        lines += [f"  {name:<14} {a:>{width}} {b:>{width}}" for name, a, b in rows]
        if self.worse:
            lines.append(f"verdict: WORSE ({cl.variant} must not be promoted)")
            lines += [f"  - {reason}" for reason in self.worse]
        elif self.inconclusive:
            lines.append("verdict: INCONCLUSIVE (no promotion without evidence)")
            lines += [f"  - {reason}" for reason in self.inconclusive]
        else:
            lines.append(f"verdict: PASS ({cl.variant} is no worse than {ch.variant})")
        return "\n".join(lines)


def read_signals(client: PrometheusClient, matchers: str, variant: str, window: str) -> Signals:
    """``variant``'s signals over the trailing ``window`` (``matchers`` select the model)."""
    m = ",".join(p for p in (matchers, f'variant="{variant}"') if p)

    def scalar(expr: str) -> float | None:
        samples = client.query(expr)
        values = [s.value for s in samples if not math.isnan(s.value)]
        return values[0] if values else None

    requests = scalar(f"sum(increase({q.selector(q.PREDICTIONS, m)}[{window}]))") or 0.0

    def ratio(codes: str) -> float | None:
        if requests <= 0:
            return None
        # no series for a status class never answered: a ratio of zero, not unknown
        return scalar(q.error_ratio(m, window, codes, by=())) or 0.0

    return Signals(
        variant=variant,
        requests=requests,
        server_error_ratio=ratio(q.SERVER_ERRORS),
        client_error_ratio=ratio(q.CLIENT_ERRORS),
        p99_seconds=scalar(q.latency_quantile(0.99, m, window, by=())) if requests else None,
        drift_share=scalar(q.drift_detected_share(m, window, by=())),
        ready=int(scalar(f"sum({q.selector(q.READY, m)})") or 0),
        instances=int(scalar(f"count({q.selector(q.READY, m)})") or 0),
    )


def compare(
    champion: Signals,
    challenger: Signals,
    config: CanaryConfig,
    window: float,
    final: bool = True,
) -> Verdict:
    """Judge ``challenger`` against ``champion`` by ``config``'s limits. Before the window ends
    (``final=False``) only readiness and error ratios count: a p99 of a few hundred requests is
    one slow request, and drift needs several reports; both are judged on the whole window."""
    verdict = Verdict(champion, challenger, window)
    ch, cl, name = champion, challenger, challenger.variant
    if cl.instances and not cl.ready:
        verdict.worse.append(f"{name}: none of its {cl.instances} instances is ready")
    elif not cl.instances:
        verdict.inconclusive.append(f"{name}: Prometheus has no series of it (not scraped?)")
    if cl.requests < config.min_requests:
        verdict.inconclusive.append(
            f"{name} served {cl.requests:.0f} requests, fewer than min_requests "
            f"{config.min_requests}: send traffic or watch longer"
        )
        return verdict
    if not ch.requests:
        verdict.inconclusive.append(f"{ch.variant} (champion) served no requests to compare with")
        return verdict
    for label, mine, theirs, allowed in (
        ("5xx ratio", cl.server_error_ratio, ch.server_error_ratio, config.max_5xx_increase),
        ("4xx ratio", cl.client_error_ratio, ch.client_error_ratio, config.max_4xx_increase),
    ):
        if mine is not None and theirs is not None and mine > theirs + allowed:
            verdict.worse.append(
                f"{label} {_pct(mine)} > {_pct(theirs + allowed)} "
                f"({ch.variant} {_pct(theirs)} + {allowed * 100:g} points allowed)"
            )
    if not final:
        return verdict
    if cl.p99_seconds is not None and ch.p99_seconds is not None:
        limit = ch.p99_seconds * config.max_p99_ratio + config.p99_tolerance_seconds
        if cl.p99_seconds > limit:
            verdict.worse.append(
                f"p99 latency {_ms(cl.p99_seconds)} > {_ms(limit)} ({ch.variant} "
                f"{_ms(ch.p99_seconds)} x {config.max_p99_ratio:g} + "
                f"{_ms(config.p99_tolerance_seconds)})"
            )
    share = config.drift_share
    drifting = share is not None and cl.drift_share is not None and cl.drift_share >= share
    if drifting and (ch.drift_share is None or ch.drift_share < (share or 0)):
        verdict.worse.append(
            f"drift found in {_pct(cl.drift_share)} of its drift reports "
            f"({ch.variant}: {_pct(ch.drift_share)}; limit {_pct(share)}): live inputs do "
            "not look like its reference data"
        )
    return verdict


def watch(
    client: PrometheusClient,
    matchers: str,
    champion: str,
    challenger: str,
    config: CanaryConfig,
    *,
    wait: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda _: None,
) -> Verdict:
    """Watch for ``config.window`` (``wait=False``: judge the trailing window at once)."""
    total = seconds(config.window)
    if not wait:
        return _judge(client, matchers, champion, challenger, config, total)
    started = clock()
    poll = seconds(config.poll)
    while True:
        sleep(min(poll, max(0.0, started + total - clock())))
        elapsed = min(clock() - started, total)
        final = elapsed >= total
        verdict = _judge(client, matchers, champion, challenger, config, elapsed, final)
        if final or verdict.worse:
            return verdict
        progress(
            f"{elapsed:.0f}/{total:.0f} s: {verdict.challenger.requests:.0f} challenger "
            "requests, nothing worse yet"
        )


def _judge(
    client: PrometheusClient,
    matchers: str,
    champion: str,
    challenger: str,
    config: CanaryConfig,
    window: float,
    final: bool = True,
) -> Verdict:
    lookback = f"{max(1, math.ceil(window))}s"
    return compare(
        read_signals(client, matchers, champion, lookback),
        read_signals(client, matchers, challenger, lookback),
        config,
        window,
        final,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"
