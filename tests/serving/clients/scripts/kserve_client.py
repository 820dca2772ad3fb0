"""Drive a server with the KServe SDK's REST client (runs in the kserve venv, prints JSON).

Usage: kserve_client.py BASE_URL MODEL ROWS_JSON. Every answer is parsed by the SDK itself and,
where the SDK has one, validated with its pydantic response model.
"""

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.rest.v2_datamodels import ServerLiveResponse, ServerReadyResponse


async def outcome(call) -> object:
    """What the SDK returned, or the error it raised (each check is reported on its own)."""
    try:
        return await call
    except Exception as exc:
        return {"raised": f"{type(exc).__name__}: {exc}"}


async def main(base_url: str, model: str, rows: np.ndarray) -> dict:
    v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
    report: dict = {
        "v2_server_live": await outcome(v2.is_server_live(base_url)),
        "v2_server_ready": await outcome(v2.is_server_ready(base_url)),
        "v2_model_ready": await outcome(v2.is_model_ready(base_url, model)),
        "v1_server_live": await outcome(v1.is_server_live(base_url)),
        "v1_model_ready": await outcome(v1.is_model_ready(base_url, model)),
    }

    async def validated(path: str, schema) -> object:
        async with httpx.AsyncClient(timeout=30) as http:
            return schema.model_validate((await http.get(base_url + path)).json()).model_dump()

    async def listed() -> object:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{base_url}/v1/models")
            return [response.status_code, response.json()]

    report["v2_live_model"] = await outcome(validated("/v2/health/live", ServerLiveResponse))
    report["v2_ready_model"] = await outcome(validated("/v2/health/ready", ServerReadyResponse))
    report["v1_models"] = await outcome(listed())

    async def infer_v2(binary: bool) -> object:
        tensor = InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        response = await v2.infer(base_url, InferRequest(model, [tensor]), model_name=model)
        return {output.name: output.as_numpy().tolist() for output in response.outputs}

    for binary in (True, False):
        report[f"v2_infer_binary_{binary}"] = await outcome(infer_v2(binary))
    for key in ("instances", "inputs"):
        report[f"v1_predict_{key}"] = await outcome(
            v1.infer(base_url, {key: rows.tolist()}, model_name=model)
        )
    await v1.close()
    await v2.close()
    return report


if __name__ == "__main__":
    url, name, rows_json = sys.argv[1:4]
    data = np.asarray(json.loads(rows_json), dtype=np.float64)
    print("\nREPORT " + json.dumps(asyncio.run(main(url, name, data))))
