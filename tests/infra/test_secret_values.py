"""Secret config values: found in the stack file, carried as :class:`Secret`, handed to
resources as secret Outputs (the mocks see Pulumi's secret marker, never the bare value)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pydantic import BaseModel, ValidationError

from infra.secret_values import (
    Secret,
    fingerprint,
    has_secret,
    mark,
    sealed,
    secret_paths,
    to_input,
)
from infra.stack.mocks import RecordingMocks

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi sdk/python/lib/pulumi/runtime/rpc.py
PLAINTEXT = "tok-3f9a1c77e2"

STACK_CONFIG: dict[str, Any] = {
    "ml-endpoints:kubernetes": {
        "name": "reranker",
        "env": {"API_TOKEN": {"secure": "v1:abc"}, "LOG_LEVEL": "info"},
        "ingress_from": [{"pod_labels": {"k": {"secure": "v1:def"}}}],
    },
    "ml-endpoints:release": {"model_name": "reranker"},
}


def test_the_stack_file_says_which_values_are_secret() -> None:
    assert secret_paths(STACK_CONFIG) == {
        ("ml-endpoints:kubernetes", "env", "API_TOKEN"): fingerprint("v1:abc"),
        ("ml-endpoints:kubernetes", "ingress_from", 0, "pod_labels", "k"): fingerprint("v1:def"),
    }


def test_a_whole_object_set_as_secret_makes_each_value_secret() -> None:
    """``pulumi config set --secret ml-endpoints:kubernetes '{...}'`` encrypts the whole key."""
    paths = secret_paths({"ml-endpoints:kubernetes": {"secure": "v1:whole"}})
    marked = mark({"ml-endpoints:kubernetes": {"name": "r", "env": {"A": PLAINTEXT}}}, paths)
    name, token = (
        marked["ml-endpoints:kubernetes"]["name"],
        marked["ml-endpoints:kubernetes"]["env"]["A"],
    )
    assert isinstance(name, Secret)
    assert isinstance(token, Secret)
    assert name.fingerprint != token.fingerprint


def test_content_names_hash_the_fingerprint_never_the_value() -> None:
    """The fingerprint hashes the ciphertext: two ciphertexts of one value differ, and nothing
    derived from the value reaches a hashed name."""
    first, again = (
        Secret(PLAINTEXT, fingerprint("v1:one")),
        Secret(PLAINTEXT, fingerprint("v1:two")),
    )
    assert sealed({"A": first}) != sealed({"A": again})
    assert PLAINTEXT not in repr(sealed({"A": first, "B": [first]}))
    assert sealed({"A": first})["A"] == f"[secret {fingerprint('v1:one')}]"


def test_only_those_values_are_wrapped() -> None:
    decrypted = {  # what Pulumi hands the program: the whole key in plain text
        "ml-endpoints:kubernetes": {
            "name": "reranker",
            "env": {"API_TOKEN": PLAINTEXT, "LOG_LEVEL": "info"},
        }
    }
    marked = mark(decrypted, secret_paths(STACK_CONFIG))
    env = marked["ml-endpoints:kubernetes"]["env"]
    assert isinstance(env["API_TOKEN"], Secret)
    assert env["LOG_LEVEL"] == "info"
    assert marked["ml-endpoints:kubernetes"]["name"] == "reranker"
    assert PLAINTEXT not in repr(marked)
    assert PLAINTEXT not in str(env["API_TOKEN"])
    assert has_secret(marked)


class _Env(BaseModel):
    env: dict[str, str | Secret]
    name: str


def test_models_keep_secrets_where_allowed_and_never_dump_them() -> None:
    model = _Env(env={"API_TOKEN": Secret(PLAINTEXT, "fp")}, name="reranker")
    assert isinstance(model.env["API_TOKEN"], Secret)
    assert PLAINTEXT not in model.model_dump_json()
    assert PLAINTEXT not in repr(model)
    with pytest.raises(ValidationError):
        _Env(env={}, name=Secret(PLAINTEXT, "fp"))  # type: ignore[arg-type]


def _outside_secrets(value: Any) -> Iterator[Any]:
    """Every value of ``value`` not inside one of Pulumi's secret wrappers."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return
        for item in value.values():
            yield from _outside_secrets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _outside_secrets(item)
    else:
        yield value


@pulumi.runtime.test
def test_resources_receive_a_secret_output(pulumi_mocks: RecordingMocks) -> pulumi.Output[Any]:
    """pulumi sdk ``runtime/rpc.py``: a secret Output travels wrapped in the secret signature;
    the mock monitor's deserialisation moves a nested secret's wrapper up to the top-level
    property (``env``), so the value never appears outside a wrapper."""
    env = to_input({"API_TOKEN": Secret(PLAINTEXT, "fp"), "LOG_LEVEL": "info"})
    resource = pulumi.CustomResource("test:index:Thing", "thing", {"env": env, "name": "t"})

    def check(_: Any) -> None:
        inputs = pulumi_mocks.one("test:index:Thing").inputs
        assert inputs["env"][SECRET_SIG] == "1b47061264138c4ac30d75fd1eb44270"
        assert PLAINTEXT not in list(_outside_secrets(inputs))
        assert "t" in list(_outside_secrets(inputs))

    return resource.urn.apply(check)
