"""Deploy the image with the Vertex AI SDK's LocalModel and call it (runs in the vertex venv).

Usage: vertex_local_model.py IMAGE ARTIFACT_DIR HOST_PORT ROWS_JSON. ``DOCKER_HOST`` points the
SDK's docker client at podman's Docker API socket. Prints one JSON report.
"""

import json
import logging
import sys

from google.cloud import aiplatform
from google.cloud.aiplatform.prediction import LocalModel


def main(image: str, artifacts: str, port: str, rows: list) -> dict:
    # A project up front: the SDK never asks google.auth (or a metadata server) for one.
    aiplatform.init(project="ml-endpoints-local", location="us-central1")
    # The SDK's own default routes (/predict, /health: constants/prediction.py).
    model = LocalModel(serving_container_image_uri=image)
    report: dict = {}
    with model.deploy_to_local_endpoint(
        artifact_uri=artifacts, host_port=port, container_ready_timeout=180
    ) as endpoint:
        health = endpoint.run_health_check()
        report["routes"] = [
            endpoint.serving_container_health_route,
            endpoint.serving_container_predict_route,
        ]
        report["health"] = [health.status_code, health.json()]
        answer = endpoint.predict(
            request=json.dumps({"instances": rows}), headers={"Content-Type": "application/json"}
        )
        report["predict"] = [answer.status_code, answer.json()]
        probabilities = endpoint.predict(
            request=json.dumps({"instances": rows, "parameters": {"output": "probabilities"}}),
            headers={"Content-Type": "application/json"},
        )
        report["probabilities"] = [probabilities.status_code, probabilities.json()]
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # the SDK reports through logging
    image, artifacts, port, rows_json = sys.argv[1:5]
    print("\nREPORT " + json.dumps(main(image, artifacts, port, json.loads(rows_json))))
