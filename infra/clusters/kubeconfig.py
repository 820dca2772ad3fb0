"""Kubeconfigs that authenticate through an exec credential plugin (no long-lived secret)."""

from __future__ import annotations

import json
from typing import Any


def exec_kubeconfig(cluster_name: str, server: str, ca_data: str, exec_: dict[str, Any]) -> str:
    """One cluster, one user, one context; ``exec_`` is the plugin's command and options."""
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            **exec_,
            "interactiveMode": "Never",
        }
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": server, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [{"name": cluster_name, "user": user}],
        }
    )
