"""The ``{"instances": [...]}`` body that Vertex AI and KServe V1 share."""

from __future__ import annotations

from typing import Any

import numpy as np

from serving import codecs
from serving.errors import BadRequest
from serving.http import Request
from serving.runtime import ModelRuntime


def read_instances(request: Request, runtime: ModelRuntime) -> tuple[dict[str, Any], np.ndarray]:
    """The parsed JSON document and its ``instances`` as rows; 415/400 with the reason."""
    codecs.check_content_type(codecs.media_type(request.header(b"content-type")), (codecs.JSON,))
    document = codecs.parse_json(request.body)
    if not isinstance(document, dict) or "instances" not in document:
        raise BadRequest("body must be a JSON object with 'instances': a list of rows")
    rows = codecs.to_rows(
        document["instances"], field="instances", feature_names=runtime.feature_names
    )
    return document, rows
