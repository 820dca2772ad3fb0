"""Names for immutable SageMaker resources, derived from their content.

SageMaker models and endpoint configurations cannot be changed in place, and an endpoint notices
a new configuration only by its name. Naming them ``PREFIX-HASH`` of everything they contain
means: same content, same name, no change; any change, a new name, so Pulumi replaces the
resource (create the new one first, as ``delete_before_replace=False`` does by default), points
the endpoint at it, and deletes the old one only after the endpoint switched.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: SageMaker's limit for model, endpoint-config and variant names.
MAX_NAME_LENGTH = 63
HASH_LENGTH = 10


def content_name(prefix: str, content: Any) -> str:
    """``PREFIX-HASH`` (at most 63 characters) where HASH fingerprints ``content`` (JSON)."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[
        :HASH_LENGTH
    ]
    head = prefix[: MAX_NAME_LENGTH - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"
