"""A real Prometheus (Debian's ``prometheus``) on 127.0.0.1 for tests, and traffic for it to see.

Each :class:`PrometheusServer` has a private data directory, scrapes every second and evaluates
its rule files every second; targets are added while it runs (file service discovery, which
Prometheus re-reads on change). It is stopped by its PID.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml

from infra.monitoring.prometheus import PrometheusClient
from tests.conftest import free_port

T = TypeVar("T")
SCRAPE_SECONDS = 1


@dataclass
class PrometheusServer:
    """``prometheus`` running as a child process; :attr:`client` queries it."""

    directory: Path
    rule_files: Sequence[Path] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _targets: list[dict[str, object]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> PrometheusClient:
        return PrometheusClient(self.url)

    def start(self, timeout: float = 30) -> PrometheusServer:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip(
                "prometheus is not installed (apt-get install prometheus; make system-deps)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_targets()
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "scrape_timeout": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": "ml-endpoints",
                    "file_sd_configs": [
                        {"files": [str(self._targets_file)], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        config_file = self.directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        log = (self.directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, timeout, f"Prometheus ready on {self.url}", self._log)
        return self

    def add_target(self, address: str, **labels: str) -> None:
        """Scrape ``address`` (``127.0.0.1:PORT``) from now on, adding ``labels``."""
        with self._lock:  # servers may be added from several threads
            self._targets.append({"targets": [address], "labels": labels})
            self._write_targets()

    def wait_scraped(self, address: str, timeout: float = 20) -> None:
        """Until ``address`` has been scraped successfully."""
        wait_for(
            lambda: any(s.value == 1 for s in self.client.query(f'up{{instance="{address}"}}')),
            timeout,
            f"Prometheus scraping {address}",
            self._log,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def _targets_file(self) -> Path:
        return self.directory / "targets.json"

    def _write_targets(self) -> None:
        staged = self._targets_file.with_suffix(".tmp")
        staged.write_text(json.dumps(self._targets))
        staged.replace(self._targets_file)  # never a half-written file for Prometheus to read

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self._log()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _log(self) -> str:
        path = self.directory / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def wait_for(
    check: Callable[[], T], timeout: float, what: str, context: Callable[[], str] = str
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{context()}")
        time.sleep(0.25)
