"""The ``{"instances": [...]}`` body that Vertex AI and KServe V1 share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from serving import codecs
from serving.errors import BadRequest
from serving.http import Request
from serving.runtime import ModelRuntime


def read_instances(
    request: Request, runtime: ModelRuntime, keys: Sequence[str] = ("instances",)
) -> tuple[dict[str, Any], np.ndarray]:
    """The parsed JSON document and its rows, under the first of ``keys`` it has (KServe V1
    also takes ``inputs``); 415/400 with the reason."""
    codecs.check_content_type(codecs.media_type(request.header(b"content-type")), (codecs.JSON,))
    document = codecs.parse_json(request.body)
    key = next((k for k in keys if isinstance(document, dict) and k in document), None)
    if key is None:
        named = " or ".join(repr(k) for k in keys)
        raise BadRequest(f"body must be a JSON object with {named}: a list of rows")
    rows = codecs.to_rows(document[key], field=key, feature_names=runtime.feature_names)
    return document, rows
