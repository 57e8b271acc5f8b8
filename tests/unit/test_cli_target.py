"""Target resolution (swapdrop_cli.target) against botocore Stubber answers: no AWS, no sockets.

These are the answers only AWS gives (a stack that does not exist, AccessDenied, no credentials),
and the local info file's failures; the e2e tests run the same code against moto's CloudFormation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from swapdrop_cli.api import JobsApi
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.target import local_target, resolve_target, stack_target

OUTPUTS = {
    "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com",
    "BucketName": "swapdrop-media",
    "SubmitQueueUrl": "https://sqs/submit",
    "SubmitDeadLetterQueueUrl": "https://sqs/submit-dlq",
    "SubmitFunctionLogGroupName": "/aws/lambda/submit",
    "ApiFunctionLogGroupName": "/aws/lambda/api",
}


class StubbedSession:
    """A boto3 Session whose CloudFormation client answers from a Stubber (and records how it was made)."""

    def __init__(self, region: str | None = "eu-west-1") -> None:
        self.region_name = region
        self._real = boto3.session.Session(
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=region or "us-east-1"
        )
        self.cloudformation = self._real.client("cloudformation")
        self.stubber = Stubber(self.cloudformation)
        self.stubber.activate()
        self.made: list[dict[str, Any]] = []

    def client(self, service: str, **kwargs: Any) -> Any:
        self.made.append({"service": service, **kwargs})
        assert service == "cloudformation"
        return self.cloudformation

    def get_credentials(self) -> Any:
        return self._real.get_credentials()


def _stack(outputs: dict[str, str], name: str = "swapdrop") -> dict:
    return {
        "Stacks": [
            {
                "StackName": name,
                "StackId": f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/1",
                "CreationTime": "2024-10-16T09:59:21Z",
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


def _error(session: StubbedSession, code: str, message: str, status: int) -> None:
    session.stubber.add_client_error(
        "describe_stacks", service_error_code=code, service_message=message, http_status_code=status
    )


def test_a_deployed_stack_is_read_from_its_outputs() -> None:
    session = StubbedSession()
    session.stubber.add_response("describe_stacks", _stack(OUTPUTS, "prod"), {"StackName": "prod"})
    target = stack_target("prod", session=session)
    assert (target.kind, target.stack_name, target.region) == ("stack", "prod", "eu-west-1")
    assert target.outputs == OUTPUTS
    assert target.api_url == OUTPUTS["ApiUrl"] and target.bucket == "swapdrop-media"
    assert target.pairs("FunctionLogGroupName") == {"Submit": "/aws/lambda/submit", "Api": "/aws/lambda/api"}
    assert target.endpoint_url is None and target.s3_endpoint_url is None  # boto3 honours AWS_ENDPOINT_URL itself
    session.stubber.assert_no_pending_responses()


def test_stack_not_found_exits_3_and_says_what_to_do() -> None:
    session = StubbedSession()
    _error(session, "ValidationError", "Stack with id nope does not exist", 400)
    with pytest.raises(CliError) as raised:
        stack_target("nope", session=session)
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert raised.value.message == (
        "stack 'nope' not found in eu-west-1: deploy it (sam deploy --guided) or pass --stack NAME / --region"
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDenied", 403), ("ExpiredToken", 400), ("UnrecognizedClientException", 400), ("InvalidClientTokenId", 403)],
)
def test_refused_credentials_exit_4(code: str, status: int) -> None:
    session = StubbedSession()
    _error(session, code, "not for you", status)
    with pytest.raises(CliError) as raised:
        stack_target("swapdrop", session=session)
    assert raised.value.exit_code == ExitCode.AUTH
    assert code in raised.value.message and raised.value.hint and "--profile" in raised.value.hint


def test_other_aws_errors_exit_3() -> None:
    session = StubbedSession()
    _error(session, "Throttling", "Rate exceeded", 400)
    with pytest.raises(CliError) as raised:
        stack_target("swapdrop", session=session)
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert "Throttling: Rate exceeded" in raised.value.message


def test_an_unreachable_endpoint_exits_3() -> None:
    class Unreachable(StubbedSession):
        def client(self, service: str, **kwargs: Any) -> Any:
            class Client:
                def describe_stacks(self, **_: Any) -> Any:
                    raise EndpointConnectionError(endpoint_url="https://cloudformation.eu-west-1.amazonaws.com/")

            return Client()

    with pytest.raises(CliError) as raised:
        stack_target("swapdrop", session=Unreachable())
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert "Could not connect" in raised.value.message


def test_no_region_exits_2() -> None:
    with pytest.raises(CliError) as raised:
        stack_target("swapdrop", session=StubbedSession(region=None))
    assert raised.value.exit_code == ExitCode.USAGE
    assert raised.value.message == "no AWS region: pass --region or set AWS_REGION"


def test_no_credentials_exits_4(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A real client with nothing to sign with: botocore raises NoCredentialsError before any connection."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    args = argparse.Namespace(stack="swapdrop", local=None, region="eu-west-1", profile=None)
    with pytest.raises(CliError) as raised:
        resolve_target(args)
    assert raised.value.exit_code == ExitCode.AUTH
    assert raised.value.message == "no AWS credentials for reading stack 'swapdrop'"


def test_an_unknown_profile_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    args = argparse.Namespace(stack=None, local=None, region="eu-west-1", profile="ghost")
    with pytest.raises(CliError) as raised:
        resolve_target(args)
    assert raised.value.exit_code == ExitCode.USAGE
    assert "AWS profile 'ghost' not found" in raised.value.message


def test_stack_and_local_together_exit_2() -> None:
    args = argparse.Namespace(stack="prod", local="out/local.json", region=None, profile=None)
    with pytest.raises(CliError) as raised:
        resolve_target(args)
    assert (raised.value.exit_code, raised.value.message) == (ExitCode.USAGE, "use --stack or --local, not both")


def test_the_stack_name_comes_from_the_environment_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr("swapdrop_cli.target.stack_target", lambda name, **_: seen.append(name))
    monkeypatch.setenv("SWAPDROP_STACK", "from-env")
    resolve_target(argparse.Namespace(stack=None, local=None, region=None, profile=None))
    resolve_target(argparse.Namespace(stack="given", local=None, region=None, profile=None))
    monkeypatch.delenv("SWAPDROP_STACK")
    resolve_target(argparse.Namespace(stack=None, local=None, region=None, profile=None))
    assert seen == ["from-env", "given", "swapdrop"]


def _info(tmp_path: Path, **changes: Any) -> Path:
    info = {
        "region": "us-east-1",
        "endpoint_url": "http://127.0.0.1:5000",
        "s3_url": "http://127.0.0.1:5001",
        "stack_name": "swapdrop-local",
        "api_credentials": {"access_key_id": "AKIALOCAL", "secret_access_key": "s" * 40, "region": "us-east-1"},
        **changes,
    }
    path = tmp_path / "local.json"
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    return path


def test_a_local_stack_is_read_from_moto_cloudformation_through_its_info_file(tmp_path: Path) -> None:
    session = StubbedSession(region="us-east-1")
    session.stubber.add_response("describe_stacks", _stack(OUTPUTS, "swapdrop-local"), {"StackName": "swapdrop-local"})
    target = local_target(_info(tmp_path), session=session)
    assert (target.kind, target.stack_name, target.outputs) == ("local", "swapdrop-local", OUTPUTS)
    assert target.endpoint_url == "http://127.0.0.1:5000" and target.s3_endpoint_url == "http://127.0.0.1:5001"
    assert session.made[0]["endpoint_url"] == "http://127.0.0.1:5000"
    assert target.description == "local stack 'swapdrop-local'"


def test_the_local_session_signs_with_the_info_files_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    monkeypatch.setattr("swapdrop_cli.target._describe", lambda *a, **k: made.append(a) or _stack(OUTPUTS)["Stacks"][0])
    target = local_target(_info(tmp_path))
    credentials = target.session.get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("AKIALOCAL", "s" * 40)


def test_a_missing_info_file_exits_3_and_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        local_target(tmp_path / "local.json")
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert raised.value.message == (
        f"no local stack at {tmp_path / 'local.json'}: start one with "
        f"`swapdrop local --info-file {tmp_path / 'local.json'}` (make local)"
    )


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_an_unreadable_info_file_exits_3(tmp_path: Path, text: str) -> None:
    path = tmp_path / "local.json"
    path.write_text(text)
    with pytest.raises(CliError) as raised:
        local_target(path)
    assert raised.value.exit_code == ExitCode.UNREACHABLE


def test_an_info_file_without_a_stack_name_exits_3(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        local_target(_info(tmp_path, stack_name=None))
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert "lacks stack_name" in raised.value.message and "restart it" in (raised.value.hint or "")


def test_a_stopped_local_stack_exits_3(tmp_path: Path) -> None:
    session = StubbedSession(region="us-east-1")
    _error(session, "ValidationError", "Stack with id swapdrop-local does not exist", 400)
    with pytest.raises(CliError) as raised:
        local_target(_info(tmp_path), session=session)
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert "has no stack 'swapdrop-local'" in raised.value.message


def test_a_missing_output_names_it_and_the_fix() -> None:
    session = StubbedSession()
    session.stubber.add_response("describe_stacks", _stack({"BucketName": "b"}), {"StackName": "old"})
    target = stack_target("old", session=session)
    with pytest.raises(CliError) as raised:
        target.output("WebhookQueueUrl")
    assert raised.value.exit_code == ExitCode.UNREACHABLE
    assert raised.value.message == "stack 'old' has no output WebhookQueueUrl"
    assert raised.value.hint == "deploy the current template (sam build && sam deploy)"
    assert target.optional_output("WebhookQueueUrl") is None
    with pytest.raises(CliError) as no_api:
        JobsApi(target)
    assert no_api.value.exit_code == ExitCode.UNREACHABLE
    assert "has no jobs API (no ApiUrl output)" in no_api.value.message
