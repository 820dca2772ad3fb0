"""``python -m infra.monitoring``: rewrite the plain dashboard and rules files from the code."""

from __future__ import annotations

from infra.monitoring import DASHBOARD_FILE, RULES_FILE
from infra.monitoring.dashboard import dashboard_json
from infra.monitoring.rules import rules_file

if __name__ == "__main__":
    DASHBOARD_FILE.write_text(dashboard_json())
    RULES_FILE.write_text(rules_file())
    print(f"wrote {DASHBOARD_FILE} and {RULES_FILE}")
