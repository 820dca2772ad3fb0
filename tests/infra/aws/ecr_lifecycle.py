"""What an ECR lifecycle policy expires, evaluated by the documented rules (moto stores lifecycle
policies but never applies them).

From docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html and
lifecycle_policy_parameters.html:

- rules apply in ascending ``rulePriority``; "An image that matches the tagging requirements of a
  rule cannot be expired by a rule with a lower priority" — a matched image is claimed by that
  rule whether or not it expires there;
- ``tagStatus``: ``tagged`` (with ``tagPatternList`` or ``tagPrefixList``), ``untagged``, ``any``;
  several patterns or prefixes in one rule are ANDed: "only the images with all specified tags are
  selected"; ``*`` in a pattern matches any characters;
- ``imageCountMoreThan N`` expires the matching images beyond the newest N (by push time);
  ``sinceImagePushed N days`` those pushed more than N days ago.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Image:
    digest: str
    pushed_day: int
    tags: tuple[str, ...] = field(default=())


def _selects(selection: dict[str, object], image: Image) -> bool:
    status = selection["tagStatus"]
    if status == "untagged":
        return not image.tags
    if status == "any":
        return True
    if not image.tags:
        return False
    patterns = selection.get("tagPatternList")
    if patterns is not None:
        return all(any(fnmatch.fnmatchcase(t, p) for t in image.tags) for p in patterns)  # type: ignore[attr-defined]
    prefixes = selection.get("tagPrefixList") or []
    return all(any(t.startswith(p) for t in image.tags) for p in prefixes)  # type: ignore[attr-defined]


def expired(policy_text: str, images: list[Image], today: int) -> set[str]:
    """Digests the policy expires on day ``today``."""
    rules = sorted(json.loads(policy_text)["rules"], key=lambda r: r["rulePriority"])
    claimed: set[str] = set()
    gone: set[str] = set()
    for rule in rules:
        selection = rule["selection"]
        matching = [i for i in images if i.digest not in claimed and _selects(selection, i)]
        claimed.update(i.digest for i in matching)
        if rule["action"]["type"] != "expire":
            continue
        if selection["countType"] == "imageCountMoreThan":
            newest_first = sorted(matching, key=lambda i: i.pushed_day, reverse=True)
            gone.update(i.digest for i in newest_first[selection["countNumber"] :])
        else:
            gone.update(
                i.digest for i in matching if today - i.pushed_day > selection["countNumber"]
            )
    return gone
