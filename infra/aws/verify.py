"""Post-deploy verification of a stack's SageMaker endpoint (``ml-endpoints verify``).

Checks, via boto3, what the stack configuration promises: the endpoint is ``InService``; its
last deployment was not rolled back (no failure reason, and the live variants serve the
configured model data and image); the live weights match the configured ones (normalised);
the image each variant runs is still in ECR and carries a tag; and every production variant
answers the sample payload when invoked with ``TargetVariant``.

Why the tag: ECR's lifecycle policy expires untagged images (infra/aws/ecr.py), and an image
copied by digest arrives untagged. SageMaker pulls the image again whenever it launches an
instance (scale-out, patching, a rollback to that fleet), so an expired image breaks a variant
that still answers today. The image checked is the digest SageMaker resolved at deployment
(DescribeEndpoint ``ProductionVariants[].DeployedImages[].ResolvedImage``), else the live model's
image.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.aws.config import ECR_IMAGE, SageMakerEndpointArgs, VariantArgs
from infra.validation import ConfigError

if TYPE_CHECKING:
    from infra.stack.components import Components

#: Stack configuration key of the endpoint this module verifies.
STACK_KEY = "ml-endpoints:sagemaker"
#: Normalised weights closer than this count as equal.
WEIGHT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Finding:
    """One verification result: ``subject`` (endpoint or endpoint/variant) and what was found."""

    subject: str
    ok: bool
    detail: str


def sample_body(args: SageMakerEndpointArgs, base_dir: Path) -> bytes:
    """The configured sample payload as bytes (``file`` is relative to ``base_dir``)."""
    sample = args.sample_payload
    if sample is None:
        raise ConfigError(
            f"{STACK_KEY}.sample_payload",
            "required by verify: a body or file to send to every variant",
        )
    if sample.file is not None:
        path = (base_dir / sample.file).resolve()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{STACK_KEY}.sample_payload.file", f"cannot read {path}: {exc.strerror}"
            ) from None
    body = sample.body
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def verify_stack(
    components: Components,
    settings: Mapping[str, Any],
    base_dir: Path,
    session: boto3.Session | None = None,
) -> list[Finding] | None:
    """Verify the stack's SageMaker endpoint; None if the stack deploys none. ``settings``:
    the stack file's config, for ``aws:region`` and ``aws:profile``.

    Raises :class:`ConfigError` when the sample payload is missing or unreadable.
    """
    args = components.sagemaker
    if args is None:
        return None
    body = sample_body(args, base_dir)
    session = session or boto3.Session(
        region_name=settings.get("aws:region"), profile_name=settings.get("aws:profile")
    )
    return verify_endpoint(
        args,
        body,
        session.client("sagemaker"),
        session.client("sagemaker-runtime"),
        ecr=lambda region: session.client("ecr", region_name=region),
    )


def verify_endpoint(
    args: SageMakerEndpointArgs,
    body: bytes,
    sagemaker: Any,
    runtime: Any,
    *,
    ecr: Callable[[str], Any] | None = None,
) -> list[Finding]:
    """All checks of one endpoint; stops early only when the endpoint cannot be described.
    ``ecr`` makes an ECR client for a region; without it the images are not looked up."""
    name = args.endpoint_name
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except (ClientError, BotoCoreError) as exc:
        return [Finding(name, False, f"cannot describe the endpoint: {exc}")]
    findings = [_status(name, endpoint)]
    model_findings, images = _live_models(args, endpoint, sagemaker)
    findings += model_findings
    findings.append(_weights(args, endpoint))
    if ecr is not None:
        for variant in [
            *endpoint.get("ProductionVariants", []),
            *endpoint.get("ShadowProductionVariants", []),
        ]:
            deployed = variant.get("DeployedImages") or []
            if deployed and deployed[0].get("ResolvedImage"):
                images[variant["VariantName"]] = deployed[0]["ResolvedImage"]
        findings += [
            _image_kept(f"{name}/{variant}", image, ecr) for variant, image in images.items()
        ]
    findings += [_invoke(args, variant, body, runtime) for variant in args.variants]
    return findings


def _status(name: str, endpoint: Mapping[str, Any]) -> Finding:
    status = endpoint.get("EndpointStatus")
    reason = endpoint.get("FailureReason")
    if status != "InService":
        why = f": {reason}" if reason else ""
        return Finding(name, False, f"status is {status}, expected InService{why}")
    if reason:
        return Finding(name, False, f"InService, but the last deployment failed: {reason}")
    return Finding(name, True, "InService")


def _live_models(
    args: SageMakerEndpointArgs, endpoint: Mapping[str, Any], sagemaker: Any
) -> tuple[list[Finding], dict[str, str]]:
    """Do the live variants serve what the stack says? A rolled-back update leaves the old
    configuration (old model data or image) live. Also returns each live variant's image."""
    name = args.endpoint_name
    images: dict[str, str] = {}
    try:
        live = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    except (ClientError, BotoCoreError) as exc:
        message = f"cannot describe the live endpoint configuration: {exc}"
        return [Finding(name, False, message)], images
    variants = {
        v["VariantName"]: v
        for v in [*live.get("ProductionVariants", []), *live.get("ShadowProductionVariants", [])]
    }
    findings = []
    for variant in args.all_variants:
        subject = f"{name}/{variant.name}"
        entry = variants.get(variant.name)
        if entry is None:
            findings.append(
                Finding(subject, False, f"not in the live configuration (has {sorted(variants)})")
            )
            continue
        finding, image = _model_matches(subject, variant, entry["ModelName"], sagemaker)
        findings.append(finding)
        if image:
            images[variant.name] = image
    return findings, images


def _model_matches(
    subject: str, variant: VariantArgs, model_name: str, sagemaker: Any
) -> tuple[Finding, str]:
    try:
        container = sagemaker.describe_model(ModelName=model_name)["PrimaryContainer"]
    except (ClientError, BotoCoreError, KeyError) as exc:
        return Finding(subject, False, f"cannot describe live model {model_name}: {exc}"), ""
    spec = variant.model
    live_data, live_image = container.get("ModelDataUrl"), container.get("Image", "")
    return _compare(subject, spec.model_data_url, spec.image, spec.image_tag, live_data, live_image)


def _compare(
    subject: str,
    data: str,
    image: str | None,
    tag: str | None,
    live_data: str | None,
    live_image: str,
) -> tuple[Finding, str]:
    hint = "the last deployment was rolled back or the stack is not deployed"
    if live_data != data:
        return Finding(subject, False, f"serves {live_data}, the stack says {data}: {hint}"), (
            live_image
        )
    expected_image = image or f":{tag}"
    if not (live_image == image or live_image.endswith(expected_image)):
        message = f"runs {live_image}, the stack says {expected_image}: {hint}"
        return Finding(subject, False, message), live_image
    return Finding(subject, True, f"serves {live_data} with {live_image}"), live_image


def _image_kept(subject: str, image: str, ecr: Callable[[str], Any]) -> Finding:
    """Is the image a variant runs still in ECR, with a tag the lifecycle rules keep?"""
    match = ECR_IMAGE.match(image)
    if match is None:
        return Finding(subject, True, f"image {image} is not in ECR (lifecycle not checked)")
    digest = image.partition("@")[2]
    image_id = {"imageDigest": digest} if digest else {"imageTag": match["tag"]}
    try:
        details = ecr(match["region"]).describe_images(
            registryId=match["account"],
            repositoryName=match["repository"],
            imageIds=[image_id],
        )["imageDetails"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ImageNotFoundException":
            return Finding(
                subject,
                False,
                f"image {image} is no longer in ECR: SageMaker cannot launch instances of this "
                "variant (scale-out, patching, a rollback to it); push it again with its release "
                "tag",
            )
        return Finding(subject, False, f"cannot look up image {image} in ECR: {exc}")
    except BotoCoreError as exc:
        return Finding(subject, False, f"cannot look up image {image} in ECR: {exc}")
    tags = sorted(details[0].get("imageTags") or []) if details else []
    if not tags:
        return Finding(
            subject,
            False,
            f"image {image} carries no tag: the ECR lifecycle policy expires untagged images, "
            "and SageMaker pulls it again to launch instances (scale-out, patching, a rollback "
            "to it); tag it with its release (crane copy SRC@DIGEST DST:TAG, or "
            "aws ecr put-image --image-tag TAG)",
        )
    return Finding(subject, True, f"image tagged {', '.join(tags)} (kept by the lifecycle rules)")


def _weights(args: SageMakerEndpointArgs, endpoint: Mapping[str, Any]) -> Finding:
    name = args.endpoint_name
    live = {
        v["VariantName"]: v.get("CurrentWeight") for v in endpoint.get("ProductionVariants", [])
    }
    expected = args.normalised_weights()
    if set(live) != set(expected):
        return Finding(
            name, False, f"live variants {sorted(live)} differ from the stack's {sorted(expected)}"
        )
    missing = sorted(v for v, w in live.items() if w is None)
    if missing:
        return Finding(name, False, f"no current weight reported for {', '.join(missing)}")
    total = sum(live.values())
    shares = {v: (w / total if total else 0.0) for v, w in live.items()}
    off = {
        v: (round(shares[v], 4), round(expected[v], 4))
        for v in expected
        if not math.isclose(shares[v], expected[v], abs_tol=WEIGHT_TOLERANCE)
    }
    if off:
        detail = ", ".join(f"{v}: live {got} != stack {want}" for v, (got, want) in off.items())
        return Finding(name, False, f"traffic shares differ ({detail})")
    shown = ", ".join(f"{v} {share:.2%}" for v, share in shares.items())
    return Finding(name, True, f"weights match ({shown})")


def _invoke(
    args: SageMakerEndpointArgs, variant: VariantArgs, body: bytes, runtime: Any
) -> Finding:
    sample = args.sample_payload
    assert sample is not None  # sample_body() checked it
    subject = f"{args.endpoint_name}/{variant.name}"
    request: dict[str, Any] = {
        "EndpointName": args.endpoint_name,
        "TargetVariant": variant.name,
        "ContentType": sample.content_type,
        "Body": body,
    }
    if sample.accept:
        request["Accept"] = sample.accept
    try:
        response = runtime.invoke_endpoint(**request)
    except (ClientError, BotoCoreError) as exc:
        return Finding(subject, False, f"invocation failed: {exc}")
    answered = response.get("InvokedProductionVariant")
    if answered != variant.name:
        return Finding(subject, False, f"asked for variant {variant.name}, {answered} answered")
    payload = response["Body"].read()
    if not payload:
        return Finding(subject, False, "answered with an empty body")
    return Finding(subject, True, f"answered {len(payload)} bytes ({response.get('ContentType')})")
