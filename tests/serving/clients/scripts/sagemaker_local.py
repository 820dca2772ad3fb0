"""Deploy the image with the SageMaker Python SDK's local mode and call it (sagemaker venv).

Usage: sagemaker_local.py IMAGE MODEL_TAR_GZ CONTAINER_ROOT PORT ROWS_JSON. ``docker-compose``
and ``docker`` on PATH run podman-compose and podman. Telemetry is opted out in the session's
config (sagemaker/telemetry/telemetry_logging.py reads ``SageMaker.PythonSDK.Modules.
TelemetryOptOut``). Prints one JSON report of what the SDK's own serializers and deserializers
made of the answers.
"""

import json
import logging
import os
import sys
import traceback

import numpy as np
from sagemaker.deserializers import JSONDeserializer, NumpyDeserializer
from sagemaker.local import LocalSession
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.serializers import CSVSerializer, JSONSerializer, NumpySerializer

NO_TELEMETRY = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def main(image: str, model_tar: str, container_root: str, port: int, rows: np.ndarray) -> dict:
    session = LocalSession(sagemaker_config=NO_TELEMETRY)
    session.config = {
        "local": {"local_code": True, "container_root": container_root, "serving_port": port}
    }
    model = Model(
        image_uri=image,
        model_data=f"file://{model_tar}",
        role="arn:aws:iam::111111111111:role/ml-endpoints-local",
        sagemaker_session=session,
        predictor_cls=Predictor,
    )
    # SKLearnPredictor's defaults: NumPy in both directions (sagemaker/sklearn/model.py)
    predictor = model.deploy(
        initial_instance_count=1,
        instance_type="local",
        serializer=NumpySerializer(),
        deserializer=NumpyDeserializer(),
    )
    report: dict = {}
    try:
        answer = predictor.predict(rows)
        report["numpy"] = {
            "type": type(answer).__name__,
            "dtype": str(answer.dtype),
            "value": answer.tolist(),
        }
        predictor.serializer, predictor.deserializer = JSONSerializer(), JSONDeserializer()
        report["json"] = predictor.predict(rows.tolist())
        predictor.serializer = CSVSerializer()
        report["csv_to_json"] = predictor.predict(rows)
    finally:
        predictor.delete_endpoint()
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # the SDK reports through logging
    image, model_tar, container_root, port, rows_json = sys.argv[1:6]
    data = np.asarray(json.loads(rows_json), dtype=np.float64)
    try:
        print(
            "\nREPORT " + json.dumps(main(image, model_tar, container_root, int(port), data)),
            flush=True,
        )
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    # The SDK's hosting thread follows docker-compose's output and is not a daemon; its
    # delete_endpoint() kills compose's children but podman-compose lingers until the container
    # is gone, which the calling test sees to. Leave without waiting for that thread.
    os._exit(0)
