"""``ml-endpoints verify --stack NAME`` against moto_server (what moto can show) and botocore's
Stubber (endpoint states moto never produces: rollbacks, failed updates). The stack files are in
the stacks' format (a release and a SageMaker target); what is deployed is what they compose."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from infra.aws.config import SageMakerEndpointArgs
from infra.aws.ecr import EcrRepository
from infra.aws.sagemaker import SageMakerEndpoint
from infra.aws.verify import verify_endpoint
from infra.stack.components import compose
from infra.stack.config import load_stack
from infra.stack.mocks import RecordingMocks
from infra.validation import validate
from serving.cli import main
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare
from tests.infra.aws.replay import ClientFactory, replay

SAMPLE = b'{"instances": [[1.0, 2.0, 3.0]]}'


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:" + "1" * 64,
            "size": 1,
        },
        "layers": [],
    }
)


def push(client: ClientFactory, tag: str | None) -> str:
    """Push the serving image to the stack's repository (CI's push), tagged or, as a copy by
    digest leaves it, untagged; returns its digest."""
    request = {"repositoryName": stacks.REPOSITORY, "imageManifest": MANIFEST}
    pushed = client("ecr").put_image(**request, **({"imageTag": tag} if tag else {}))
    return str(pushed["image"]["imageId"]["imageDigest"])


def deploy(
    mocks: RecordingMocks, client: ClientFactory, config: dict[str, Any], *, pushed: bool = True
) -> None:
    """What ``pulumi up`` would create from the stack ``config``, replayed into moto; then the
    release's image is pushed with its tag, as the pipeline does."""
    args = compose(load_stack(config, "Pulumi.test.yaml")).sagemaker
    assert args is not None

    def build() -> SageMakerEndpoint:
        return SageMakerEndpoint(
            "churn", args, repository=EcrRepository("serving", {"name": stacks.REPOSITORY})
        )

    declare(build)
    replay(mocks, client)
    if pushed:
        push(client, config["ml-endpoints:release"]["image"]["tag"])


def write_stack(directory: Path, config: dict[str, Any], name: str = "test") -> None:
    # JSON is YAML: the stack file as Pulumi reads it
    (directory / f"Pulumi.{name}.yaml").write_text(json.dumps({"config": config}))


def answers(moto_url: str, *variants: str) -> None:
    """Queue what moto's invoke_endpoint returns next (it does not run models)."""
    results = [
        {
            "Body": '{"predictions": [1]}',
            "ContentType": "application/json",
            "InvokedProductionVariant": variant,
        }
        for variant in variants
    ]
    response = httpx.post(
        f"{moto_url}/moto-api/static/sagemaker/endpoint-results",
        json={"results": results},
        timeout=10,
    )
    response.raise_for_status()


def verify(stacks_dir: Path, stack: str = "test") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["verify", "--stack", stack, "--stacks-dir", str(stacks_dir)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def stack_config(tmp_path: Path) -> dict[str, Any]:
    """The two-variant stack, sample payload in a file next to the stack file."""
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "churn.json").write_bytes(SAMPLE)
    config = stacks.two_variant_stack()
    config["ml-endpoints:sagemaker"]["sample_payload"] = {"file": "samples/churn.json"}
    return config


def test_healthy_endpoint_passes(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    deploy(pulumi_mocks, aws_client, stack_config)
    write_stack(tmp_path, stack_config)
    answers(aws_env, "blue", "green")

    code, out, err = verify(tmp_path)

    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert "ok   sagemaker churn: InService" in lines
    assert "ok   sagemaker churn: weights match (blue 75.00%, green 25.00%)" in lines
    assert any(
        line.startswith("ok   sagemaker churn/green: serves s3://ml-models") for line in lines
    )
    assert "ok   sagemaker churn/blue: answered 20 bytes (application/json)" in lines
    assert "ok   sagemaker churn/green: image tagged v1.2.0 (kept by the lifecycle rules)" in lines
    assert lines[-1] == "ml-endpoints verify: all 8 checks passed"


def test_weights_changed_outside_the_stack_fail(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    deploy(pulumi_mocks, aws_client, stack_config)
    aws_client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[
            {"VariantName": "blue", "DesiredWeight": 1.0},
            {"VariantName": "green", "DesiredWeight": 1.0},
        ],
    )
    write_stack(tmp_path, stack_config)
    answers(aws_env, "blue", "green")

    code, out, err = verify(tmp_path)

    assert code == 1
    assert (
        "FAIL sagemaker churn: traffic shares differ "
        "(blue: live 0.5 != stack 0.75, green: live 0.5 != stack 0.25)"
    ) in out.splitlines()
    assert "1 of 8 checks failed" in err


def test_weights_compare_normalised(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    deploy(pulumi_mocks, aws_client, stack_config)
    aws_client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[
            {"VariantName": "blue", "DesiredWeight": 0.3},
            {"VariantName": "green", "DesiredWeight": 0.1},
        ],
    )
    write_stack(tmp_path, stack_config)
    answers(aws_env, "blue", "green")
    code, out, _ = verify(tmp_path)
    assert code == 0, out


def test_stale_deployment_is_reported_as_rolled_back(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    deploy(pulumi_mocks, aws_client, stack_config)
    newer = stacks.changed(
        stack_config,
        "ml-endpoints:release",
        "variants",
        1,
        "s3_uri",
        value="s3://ml-models/churn/v3/model.tar.gz",
    )
    write_stack(tmp_path, newer)
    answers(aws_env, "blue", "green")

    code, out, _ = verify(tmp_path)

    assert code == 1
    assert (
        "FAIL sagemaker churn/green: serves s3://ml-models/churn/v2/model.tar.gz, the stack says "
        "s3://ml-models/churn/v3/model.tar.gz: the last deployment was rolled back or the stack "
        "is not deployed"
    ) in out.splitlines()


def test_image_mismatch_is_reported(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    deploy(pulumi_mocks, aws_client, stack_config)
    write_stack(
        tmp_path, stacks.changed(stack_config, "ml-endpoints:release", "image", "tag", value="v9")
    )
    answers(aws_env, "blue", "green")
    code, out, _ = verify(tmp_path)
    assert code == 1
    assert "FAIL sagemaker churn/blue: runs " in out
    assert f"the stack says {stacks.REPOSITORY_URI}:v9" in out


def test_an_untagged_image_is_reported_before_the_lifecycle_expires_it(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Issue 13 item 7: an image copied by digest (``crane copy SRC@D DST@D``) arrives untagged;
    the lifecycle rule "expire untagged images" deletes it while the endpoint still runs it, and
    SageMaker pulls it again for every new instance. verify fails on it, naming the fix."""
    aws_client("ecr").create_repository(repositoryName=stacks.REPOSITORY)
    digest = push(aws_client, None)
    pinned = stacks.changed(stack_config, "ml-endpoints:release", "image", "digest", value=digest)
    aws_client("ecr").delete_repository(repositoryName=stacks.REPOSITORY, force=True)
    deploy(pulumi_mocks, aws_client, pinned, pushed=False)
    push(aws_client, None)
    write_stack(tmp_path, pinned)
    answers(aws_env, "blue", "green")

    code, out, _ = verify(tmp_path)

    assert code == 1
    image = f"{stacks.REPOSITORY_URI}@{digest}"
    assert (
        f"FAIL sagemaker churn/blue: image {image} carries no tag: the ECR lifecycle policy "
        "expires untagged images"
    ) in out
    assert "crane copy SRC@DIGEST DST:TAG" in out

    push(aws_client, "v1.2.0")  # the fix: the same digest, tagged with its release
    code, out, _ = verify(tmp_path)
    assert code == 0, out


def test_an_image_gone_from_ecr_is_reported(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    deploy(pulumi_mocks, aws_client, stack_config, pushed=False)
    write_stack(tmp_path, stack_config)
    answers(aws_env, "blue", "green")
    code, out, _ = verify(tmp_path)
    assert code == 1
    assert (
        f"FAIL sagemaker churn/green: image {stacks.REPOSITORY_URI}:v1.2.0 is no longer in ECR"
    ) in out


def test_wrong_variant_answering_fails(
    pulumi_mocks: RecordingMocks,
    aws_client: ClientFactory,
    aws_env: str,
    stack_config: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Each variant is invoked with its own TargetVariant: moto hands out one queued answer
    per distinct request, so green gets the second answer only if the requests differ."""
    deploy(pulumi_mocks, aws_client, stack_config)
    write_stack(tmp_path, stack_config)
    answers(aws_env, "blue", "blue")

    code, out, _ = verify(tmp_path)

    assert code == 1
    assert "FAIL sagemaker churn/green: asked for variant green, blue answered" in out
    assert "ok   sagemaker churn/blue: answered" in out


def test_missing_endpoint_fails(aws_env: str, stack_config: dict[str, Any], tmp_path: Path) -> None:
    write_stack(tmp_path, stack_config)
    code, out, err = verify(tmp_path)
    assert code == 1
    assert out.startswith("FAIL sagemaker churn: cannot describe the endpoint: ")
    assert "1 of 1 checks failed" in err


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            {
                "EndpointStatus": "UpdateRollbackFailed",
                "FailureReason": "alarm churn-blue-model-latency",
            },
            "status is UpdateRollbackFailed, expected InService: alarm churn-blue-model-latency",
        ),
        (
            {"EndpointStatus": "InService", "FailureReason": "Rolled back: alarm fired"},
            "InService, but the last deployment failed: Rolled back: alarm fired",
        ),
        ({"EndpointStatus": "Updating"}, "status is Updating, expected InService"),
    ],
    ids=["rollback-failed", "rolled-back", "updating"],
)
def test_states_moto_cannot_produce(endpoint: dict[str, Any], message: str) -> None:
    args = validate(SageMakerEndpointArgs, stacks.one_variant(), "sagemaker")
    session = boto3.Session(
        region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    sagemaker = session.client("sagemaker", endpoint_url="http://127.0.0.1:9")
    runtime = session.client("sagemaker-runtime", endpoint_url="http://127.0.0.1:9")
    now = "2026-01-01T00:00:00Z"
    with Stubber(sagemaker) as sm, Stubber(runtime) as rt:
        sm.add_response(
            "describe_endpoint",
            {
                "EndpointName": "churn",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn",
                "EndpointConfigName": "churn-0123456789",
                "CreationTime": now,
                "LastModifiedTime": now,
                "ProductionVariants": [{"VariantName": "main", "CurrentWeight": 1.0}],
                **endpoint,
            },
        )
        sm.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "churn-0123456789",
                "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x",
                "CreationTime": now,
                "ProductionVariants": [{"VariantName": "main", "ModelName": "churn-main-1"}],
            },
        )
        sm.add_response(
            "describe_model",
            {
                "ModelName": "churn-main-1",
                "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/churn-main-1",
                "CreationTime": now,
                "PrimaryContainer": {
                    "Image": stacks.IMAGE,
                    "ModelDataUrl": "s3://ml-models/churn/v1/model.tar.gz",
                },
            },
        )
        rt.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"[1]"), 3), "InvokedProductionVariant": "main"},
            {
                "EndpointName": "churn",
                "TargetVariant": "main",
                "ContentType": "application/json",
                "Body": SAMPLE,
            },
        )
        findings = verify_endpoint(args, SAMPLE, sagemaker, runtime)
    assert [(f.subject, f.ok, f.detail) for f in findings if not f.ok] == [
        ("churn", False, message)
    ]
    assert len(findings) == 4


def test_stack_file_missing(tmp_path: Path) -> None:
    code, out, err = verify(tmp_path, "nope")
    assert (code, out) == (2, "")
    assert f"{tmp_path}/Pulumi.nope.yaml: cannot read the stack file" in err


def test_invalid_stack_config_names_the_key(tmp_path: Path) -> None:
    config = stacks.two_variant_stack()
    write_stack(
        tmp_path, stacks.changed(config, "ml-endpoints:release", "variants", 1, "weight", value=-1)
    )
    code, _, err = verify(tmp_path)
    assert code == 2
    assert (
        f"invalid configuration: {tmp_path}/Pulumi.test.yaml: "
        "ml-endpoints:release.variants[1].weight: "
    ) in err


def test_sample_payload_required(tmp_path: Path) -> None:
    config = stacks.two_variant_stack()
    write_stack(tmp_path, stacks.without(config, "ml-endpoints:sagemaker", "sample_payload"))
    code, _, err = verify(tmp_path)
    assert code == 2
    assert "sagemaker.sample_payload: required by verify" in err


def test_sample_file_must_exist(tmp_path: Path) -> None:
    config = stacks.changed(
        stacks.two_variant_stack(),
        "ml-endpoints:sagemaker",
        "sample_payload",
        value={"file": "gone.json"},
    )
    write_stack(tmp_path, config)
    code, _, err = verify(tmp_path)
    assert code == 2
    assert "sagemaker.sample_payload.file: cannot read" in err


def test_stack_without_targets(tmp_path: Path) -> None:
    write_stack(tmp_path, stacks.without(stacks.two_variant_stack(), "ml-endpoints:sagemaker"))
    code, _, err = verify(tmp_path)
    assert code == 2
    assert "configures nothing to verify (ml-endpoints:sagemaker)" in err


def test_missing_dependency_is_explained(
    tmp_path: Path, stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stack(tmp_path, stack_config)
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.delitem(sys.modules, "infra.aws.verify", raising=False)
    code, _, err = verify(tmp_path)
    assert code == 2
    assert "boto3 is not installed; pip install 'ml-endpoints[aws,infra]'" in err
