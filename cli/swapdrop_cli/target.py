"""Which stack the CLI talks to, found one way for both kinds: the stack's CloudFormation outputs.

`--stack NAME` uses the usual AWS profile, region and credential resolution (boto3 also honours
AWS_ENDPOINT_URL). `--local [INFO_FILE]` reads the file `swapdrop local --info-file` wrote: the
local stack's endpoint (moto, where it registered itself as a CloudFormation stack), its name and
the credentials its API accepts. Every AWS failure becomes a one-line CliError with an exit code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from swapdrop_cli.errors import CliError, ExitCode

DEFAULT_STACK = "swapdrop"
DEFAULT_LOCAL_INFO = Path("out/local.json")
STACK_ENV = "SWAPDROP_STACK"
AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
    }
)
CREDENTIALS_HINT = "configure credentials (aws configure, aws sso login, AWS_PROFILE) or pass --profile"
BOTO_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)


@dataclass
class Target:
    kind: str
    """"stack" (deployed) or "local"."""
    stack_name: str
    region: str
    outputs: dict[str, str]
    session: Any
    """A boto3 Session with the credentials to use (the local stack's API credentials, locally)."""
    endpoint_url: str | None = None
    """Local: moto. Deployed: None (boto3 itself honours AWS_ENDPOINT_URL)."""
    s3_endpoint_url: str | None = None
    """Local: the S3 gateway in front of moto. Deployed: None."""
    info: dict[str, Any] | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def description(self) -> str:
        """How to name this stack in a message."""
        return f"local stack '{self.stack_name}'" if self.kind == "local" else f"stack '{self.stack_name}'"

    def client(self, service: str) -> Any:
        """A boto3 client for `service`, one per target."""
        if service not in self._clients:
            endpoint = self.s3_endpoint_url if service == "s3" and self.s3_endpoint_url else self.endpoint_url
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=endpoint, config=BOTO_CONFIG
            )
        return self._clients[service]

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise CliError(
                f"{self.description} has no output {key}",
                ExitCode.UNREACHABLE,
                hint="deploy the current template (sam build && sam deploy)"
                if self.kind == "stack"
                else "restart swapdrop local with this version",
            )
        return value

    def optional_output(self, key: str) -> str | None:
        return self.outputs.get(key) or None

    def pairs(self, suffix: str) -> dict[str, str]:
        """Outputs whose key ends with `suffix`, keyed by the rest: pairs("FunctionName") → {"Submit": …}."""
        return {key[: -len(suffix)]: value for key, value in self.outputs.items() if key.endswith(suffix) and value}

    @property
    def api_url(self) -> str | None:
        return self.optional_output("ApiUrl")

    @property
    def bucket(self) -> str:
        return self.output("BucketName")

    @property
    def jobs_table(self) -> str:
        return self.output("JobsTableName")

    @property
    def api_key_secret_arn(self) -> str:
        return self.output("ApiKeySecretArn")


def resolve_target(args: Any) -> Target:
    """The target `args` (the parsed global options) names: --local, else --stack / $SWAPDROP_STACK / swapdrop."""
    local = getattr(args, "local", None)
    stack = getattr(args, "stack", None)
    if local is not None and stack is not None:
        raise CliError("use --stack or --local, not both", ExitCode.USAGE)
    if local is not None:
        return local_target(Path(local))
    name = stack or os.environ.get(STACK_ENV) or DEFAULT_STACK
    return stack_target(name, region=getattr(args, "region", None), profile=getattr(args, "profile", None))


def stack_target(name: str, region: str | None = None, profile: str | None = None, session: Any = None) -> Target:
    """A deployed stack, by name, through the usual AWS configuration."""
    if session is None:
        try:
            session = boto3.session.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise CliError(
                f"AWS profile '{profile}' not found", ExitCode.USAGE, hint="check ~/.aws/config or pass --profile"
            ) from None
    region = session.region_name
    if not region:
        raise CliError("no AWS region: pass --region or set AWS_REGION", ExitCode.USAGE)
    cloudformation = session.client("cloudformation", region_name=region, config=BOTO_CONFIG)
    stack = _describe(cloudformation, name, region, local=False)
    return Target("stack", name, region, _outputs(stack), session)


def local_target(info_file: Path, session: Any = None) -> Target:
    """A running `swapdrop local`, through the info file it wrote."""
    start = f"start one with `swapdrop local --info-file {info_file}` (make local)"
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"no local stack at {info_file}: {start}", ExitCode.UNREACHABLE) from None
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read the local stack's info file {info_file}: {error}", ExitCode.UNREACHABLE) from None
    if not isinstance(info, dict):
        raise CliError(f"{info_file} is not a swapdrop local info file", ExitCode.UNREACHABLE, hint=start)
    missing = [key for key in ("region", "endpoint_url", "stack_name", "api_credentials") if not info.get(key)]
    if missing:
        raise CliError(
            f"{info_file} lacks {', '.join(missing)}: it was not written by this version of swapdrop local",
            ExitCode.UNREACHABLE,
            hint=f"restart it: swapdrop local --info-file {info_file}",
        )
    credentials = info["api_credentials"]
    if session is None:
        session = boto3.session.Session(
            aws_access_key_id=credentials.get("access_key_id"),
            aws_secret_access_key=credentials.get("secret_access_key"),
            region_name=info["region"],
        )
    cloudformation = session.client(
        "cloudformation", region_name=info["region"], endpoint_url=info["endpoint_url"], config=BOTO_CONFIG
    )
    stack = _describe(cloudformation, info["stack_name"], info["region"], local=True, info_file=info_file)
    return Target(
        "local",
        info["stack_name"],
        info["region"],
        _outputs(stack),
        session,
        endpoint_url=info["endpoint_url"],
        s3_endpoint_url=info.get("s3_url") or info["endpoint_url"],
        info=info,
    )


def _describe(cloudformation: Any, name: str, region: str, local: bool, info_file: Path | None = None) -> dict:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ValidationError" and "does not exist" in message:
            if local:
                raise CliError(
                    f"the local stack at {info_file} has no stack '{name}': it has stopped or restarted",
                    ExitCode.UNREACHABLE,
                    hint=f"start it again: swapdrop local --info-file {info_file}",
                ) from None
            raise CliError(
                f"stack '{name}' not found in {region}: "
                "deploy it (sam deploy --guided) or pass --stack NAME / --region",
                ExitCode.UNREACHABLE,
            ) from None
        raise boto_error(error, f"reading stack '{name}'") from None
    except BotoCoreError as error:
        if local and isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
            raise CliError(
                f"the local stack at {info_file} does not answer: it has stopped",
                ExitCode.UNREACHABLE,
                hint=f"start it again: swapdrop local --info-file {info_file}",
            ) from None
        raise boto_error(error, f"reading stack '{name}'") from None
    if not stacks:
        raise CliError(f"stack '{name}' not found in {region}", ExitCode.UNREACHABLE)
    return stacks[0]


def _outputs(stack: dict) -> dict[str, str]:
    return {item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs") or []}


def boto_error(error: Exception, doing: str) -> CliError:
    """An AWS SDK failure as a person should read it, with the exit code scripts rely on."""
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return CliError(f"no AWS credentials for {doing}", ExitCode.AUTH, hint=CREDENTIALS_HINT)
    if isinstance(error, NoRegionError):
        return CliError("no AWS region: pass --region or set AWS_REGION", ExitCode.USAGE)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or code
        if code in AUTH_CODES or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            return CliError(f"AWS refused {doing}: {code}: {message}", ExitCode.AUTH, hint=CREDENTIALS_HINT)
        return CliError(f"{doing} failed: {code}: {message}", ExitCode.UNREACHABLE)
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return CliError(f"{doing} failed: {error}", ExitCode.UNREACHABLE, hint="check your network and --region")
    # Credential providers (SSO, assume-role) raise their own BotoCoreErrors: a token to refresh.
    name = type(error).__name__
    if "Token" in name or "SSO" in name or "Credential" in name:
        return CliError(f"AWS credentials unusable for {doing}: {error}", ExitCode.AUTH, hint=CREDENTIALS_HINT)
    return CliError(f"{doing} failed: {error}", ExitCode.UNREACHABLE)
