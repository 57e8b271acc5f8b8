"""`swapdrop local`: the whole stack on one machine.

moto's server (S3, SQS, DynamoDB, Secrets Manager, EventBridge) with the template's
resources; the swap API emulator (or another swap API); the functions in supervised
worker processes (replaced when they crash or time out); Lambda's SQS event source with
the template's batch size and maximum concurrency and a short local visibility timeout;
an HTTP adapter for the HTTP API's routes, with API Gateway's IAM (SigV4) auth on the routes
the template does not open, and a second adapter for the optional JWT API with a local issuer;
the reconciler on a schedule, on its own workers.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from swapdrop_local.auth import ApiCredentials, LocalJwtIssuer, SigV4Verifier
from swapdrop_local.aws_calls import APP_ID_VARIABLE, AwsCallLog, CallLog, CountingMotoServer
from swapdrop_local.cloudformation import register_stack, stack_outputs
from swapdrop_local.functions import FunctionSpec, LocalFunction, function_specs, layer_dirs
from swapdrop_local.http_api import HttpApiServer, Route
from swapdrop_local.log_shipper import FunctionLogs, LogFile, LogFileHandler
from swapdrop_local.moto_process import MotoProcess
from swapdrop_local.moto_routing import patch_moto
from swapdrop_local.provision import LocalStack, local_client, provision
from swapdrop_local.s3_gateway import Keys, S3Gateway
from swapdrop_local.sqs_source import SqsEventSource
from swapdrop_local.template import Resolver

log = logging.getLogger("swapdrop.local")


@dataclass
class StackOptions:
    region: str = "us-east-1"
    upstream: str | None = None
    """Another swap API's base URL; None starts the emulator."""
    api_key: str = "local-api-key"
    auth_style: str = "bearer"
    reconcile_interval: float = 10.0
    parameters: dict[str, str] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)
    """Extra EmulatorConfig fields when the stack starts its own emulator."""
    submit_concurrency: int | None = None
    """Override the template's MaximumConcurrency (None: use it)."""
    poll_wait_seconds: int = 1
    function_environment: dict[str, str] = field(default_factory=dict)
    """Extra environment for every function (e.g. to quiet them)."""
    visibility_timeout: int | None = 20
    """The inbox queue's VisibilityTimeout, so a crashed invocation's messages come back
    within a minute (the template's 1080 s is for AWS); None keeps the template's."""
    max_workers: int = 4
    """Local cap on a function's workers (its ReservedConcurrentExecutions, else the default)."""
    throttle_wait_seconds: float = 10.0
    """How long an HTTP invocation waits for a free worker before it answers 429."""
    stack_name: str | None = None
    """Prefix of the resource names; None: swapdrop-local, then swapdrop-local-2, … for later
    stacks in the same process (moto's state is per process and outlives a stopped server)."""
    log_file: Path | None = None
    """The stack's log (JSON lines: the functions' logs and the stack's own); None: a new file in the
    temporary directory, kept after stop."""
    count_aws_calls: bool = False
    """Record every request moto answers by function and operation (`RunningStack.aws_calls`)."""
    moto_in_process: bool = False
    """Run moto's server in this process (as before it had its own: see moto_process), for a caller that hooks
    moto's backends in-process (bench_cost's write ledger). Its state then outlives the stack (see stack_name)."""
    upstream_pool: int | None = None
    """None: one emulator and the plain key in the key secret (the stack as before the pool). N (1-50): N
    emulators, each its own port and instance id, and the key secret holds the pool JSON naming them."""
    pool_members: list[dict[str, Any]] = field(default_factory=list)
    """Per member (by position) EmulatorConfig fields over `emulator`, e.g. {"faults": ["status=500@0.5"]};
    `concurrency` and `queue_size` are the member's `running` and `queued` (default 3 and 10, as the pool's)."""
    pool_settings: dict[str, Any] = field(default_factory=dict)
    """Extra top-level fields of the pool JSON, e.g. {"benchSeconds": 5}."""


_stacks_started = itertools.count(1)

POOL_RUNNING = 3
POOL_QUEUED = 10
"""A pool member emulator's default limits: midjourney-proxy's per-account defaults, as the pool assumes."""
MAX_POOL_MEMBERS = 50
LOCAL_CAPACITY_RETRY_SECONDS = "1"
"""CapacityRetrySeconds locally (AWS: 20): a job waiting for a free member comes back within a second or two."""


@dataclass(frozen=True)
class PoolMemberInfo:
    """One local pool member: its emulator and what the pool JSON says about it."""

    name: str
    url: str
    instance_id: str
    running: int
    queued: int

    def pool_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "baseUrl": self.url,
            "instanceId": self.instance_id,
            "running": self.running,
            "queued": self.queued,
        }

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "instance_id": self.instance_id,
            "running": self.running,
            "queued": self.queued,
        }


def pool_secret(api_key: str, members: list[PoolMemberInfo], settings: dict[str, Any] | None = None) -> str:
    """The key secret's value for a local pool (the format in README "Upstream pool")."""
    return json.dumps({"apiKey": api_key, **(settings or {}), "members": [m.pool_entry() for m in members]})


FUNCTION_ACCESS_KEY_ID = "local"
FUNCTION_SECRET_ACCESS_KEY = "local"  # noqa: S105 - moto's stand-in credentials, known to the S3 gateway
"""The functions' AWS credentials locally; the S3 gateway checks presigned requests against them."""
S3_GATEWAY_MARGIN_BYTES = 1024 * 1024
"""The S3 gateway's ceiling on a POSTed file: MaxImageBytes plus this (the policy's own range is exact)."""

STACK_LOGGERS = ("swapdrop.local", "swapdrop_emulator")
"""The local stack's own loggers: INFO and up go to the stack's log file."""

DEFAULT_WORKERS = {"CallbackFunction": 4}
"""Workers for a function without reserved concurrency (others get 1: the scheduled reconciler)."""


class RunningStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.functions: dict[str, LocalFunction] = {}
        self.emulator: Any = None
        """The (first) emulator the stack started, None with `upstream`."""
        self.emulators: list[Any] = []
        """Every emulator the stack started: one, or the pool's members in order."""
        self.pool: list[PoolMemberInfo] = []
        """The upstream pool's members (empty without `upstream_pool`)."""
        self.moto: ThreadedMotoServer | MotoProcess | None = None
        self.s3_gateway: S3Gateway | None = None
        """S3 for clients of presigned requests: checks them as S3 does, forwards everything to moto."""
        self.api: HttpApiServer | None = None
        """The IAM HTTP API: callbacks and /health open, every other route SigV4-signed."""
        self.jwt_api: HttpApiServer | None = None
        """The JWT API: the same non-open routes, for RS256 tokens from `jwt_issuer`."""
        self.api_credentials = ApiCredentials.generate(options.region)
        self.jwt_issuer: LocalJwtIssuer | None = None
        self._secrets_dir: Path | None = None
        self.stack: LocalStack | None = None
        self.stack_id: str | None = None
        """The local stack's id in moto's CloudFormation (describe_stacks answers its Outputs)."""
        self.log_file: Path | None = None
        self.function_logs: FunctionLogs | None = None
        """The functions' stdout/stderr: to the log file and moto's CloudWatch Logs, never the console."""
        self._log: LogFile | None = None
        self._log_handler: LogFileHandler | None = None
        self._logger_levels: dict[str, int] = {}
        self.reconcile_runs = 0
        self.failure: str | None = None
        """Why the stack can no longer stand in for AWS (moto's process died), None while it can."""
        self.failed = threading.Event()
        """Set with `failure`: `swapdrop local` waits on it and stops, exit code 1."""
        self.aws_calls: CallLog | None = None
        """With `count_aws_calls`: every AWS request by caller (the function's name) and operation."""

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> RunningStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        stack_name = options.stack_name or _default_stack_name(next(_stacks_started))
        self.log_file = options.log_file or _new_log_file(stack_name)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._open_log(self.log_file)
        if options.moto_in_process:
            patch_moto()  # as the child does (moto_routing): remembered backends, keep-alive, no request log, ...
            if options.count_aws_calls:
                self.aws_calls = AwsCallLog()
                self.moto = CountingMotoServer(self.aws_calls)
            else:
                self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self.moto.start()
        else:
            moto = MotoProcess(count_calls=options.count_aws_calls, on_exit=self._moto_exited)
            self.moto = moto
            moto.start()  # the same patches, in the child
            if options.count_aws_calls:
                self.aws_calls = moto.calls()
        host, port = self.moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        if options.upstream and options.upstream_pool is not None:
            raise ValueError("upstream and upstream_pool exclude each other: the pool's members are local emulators")
        upstream_url = options.upstream or self._start_emulators()
        routes: list[Route] = []
        jwt_routes: list[Route] = []
        iam = SigV4Verifier(self.api_credentials, options.region)
        self.api = HttpApiServer(routes, authorizers={"AWS_IAM": iam}).start()
        self.jwt_api = HttpApiServer(jwt_routes)
        self.jwt_issuer = LocalJwtIssuer(f"{self.jwt_api.url}/")
        self._secrets_dir = Path(tempfile.mkdtemp(prefix="swapdrop-local-"))  # 0700
        self.jwt_issuer.write_private_key(self._secrets_dir / "jwt-private-key.pem")
        self.jwt_api.authorizers["JWT"] = self.jwt_issuer.verifier()
        self.jwt_api.start()
        overrides = {
            "UpstreamBaseUrl": upstream_url,
            "UpstreamAuthStyle": options.auth_style,
            "CapacityRetrySeconds": LOCAL_CAPACITY_RETRY_SECONDS,
            **options.parameters,
        }
        secret = pool_secret(options.api_key, self.pool, options.pool_settings) if self.pool else options.api_key
        self.stack = provision(
            endpoint,
            options.region,
            callback_base_url=self.api.url,
            parameter_overrides=overrides,
            api_key=secret,
            stack_name=stack_name,
        )
        resolver = self.stack.resolver
        assert resolver is not None
        # Registered while the workers start (moto's CloudFormation imports most of moto on first use: about a
        # second) and before any event source runs, so it never competes with their first work.
        registering = ThreadPoolExecutor(max_workers=1, thread_name_prefix="register-stack")
        registration = registering.submit(
            register_stack,
            self.stack.client("cloudformation"),
            self.stack.stack_name,
            stack_outputs(resolver, {"CallbackApi": self.api.url, "JwtApi": self.jwt_api.url}),
            self.stack.parameters,
        )
        registering.shutdown(wait=False)
        self.s3_gateway = S3Gateway(
            endpoint,
            Keys({FUNCTION_ACCESS_KEY_ID: FUNCTION_SECRET_ACCESS_KEY}, options.region),
            max_file_bytes=int(self.stack.parameters["MaxImageBytes"]) + S3_GATEWAY_MARGIN_BYTES,
        ).start()
        specs = function_specs(resolver)
        layers = layer_dirs(resolver)
        assert self._log is not None
        self.function_logs = FunctionLogs(self._log, self.stack.log_groups, self.stack.client("logs"))
        submit_events = [e for e in specs["SubmitFunction"].events.values() if e["Type"] == "SQS"]
        submit_props = submit_events[0]["Properties"]
        concurrency = options.submit_concurrency or int(
            submit_props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)
        )
        if options.visibility_timeout is not None:
            sqs = local_client("sqs", options.region, endpoint)
            sqs.set_queue_attributes(
                QueueUrl=self.stack.queue_url, Attributes={"VisibilityTimeout": str(options.visibility_timeout)}
            )
        for name, spec in specs.items():
            environment = self._environment(endpoint, self.stack.environments[name])
            # What Lambda tells a function about itself (the log stream is set per worker: see FunctionLogs.attach).
            environment |= {"AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_LOG_GROUP_NAME": self.stack.log_groups[name]}
            environment.setdefault(APP_ID_VARIABLE, name)  # app/<name> in the User-Agent: aws_calls counts by it
            workers = concurrency if name == "SubmitFunction" else self._workers_for(spec)
            self.functions[name] = LocalFunction(
                spec, environment, layers, workers, throttle_wait=options.throttle_wait_seconds, logs=self.function_logs
            )
        for route in http_api_routes(resolver, specs, self._lambda):
            routes.append(route)
            if route.auth != "NONE":  # the JWT API serves what IAM guards; callbacks and /health stay on one API
                jwt_routes.append(
                    Route(route.method, route.path, route.handler, route.function_name, route.timeout, "JWT")
                )
        for function in self.functions.values():
            function.warm_up()
        self.stack_id = registration.result()
        batch_size = int(submit_props.get("BatchSize", 10))
        for index in range(concurrency):
            source = SqsEventSource(
                local_client("sqs", options.region, endpoint),
                self.stack.queue_url,
                self._lambda("SubmitFunction", wait=specs["SubmitFunction"].timeout),
                "SubmitFunction",
                batch_size=batch_size,
                function_timeout=specs["SubmitFunction"].timeout,
            )
            self._spawn(f"sqs-poller-{index}", self._poll_forever, source)
        self._poll_swap_requests(specs, endpoint)
        self._poll_webhooks(specs)
        if options.reconcile_interval > 0:
            self._spawn("reconciler", self._reconcile_forever)
        log.info("local stack up: %s", json.dumps(redacted(self.info())))

    def _moto_exited(self, returncode: int) -> None:
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
        self.failure = (
            f"moto's server (the local AWS) died ({how}): every AWS call now fails and its data is gone; "
            "stop this stack and start a new one"
        )
        log.error("%s", self.failure)
        self.failed.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        for function in self.functions.values():
            function.close()
        if self.function_logs:
            self.function_logs.stop()  # before moto stops: the last lines still reach CloudWatch
        if self.api:
            self.api.stop()
        if self.jwt_api:
            self.jwt_api.stop()
        if self._secrets_dir:
            shutil.rmtree(self._secrets_dir, ignore_errors=True)
        for emulator in self.emulators:
            emulator.stop()
        if self.s3_gateway:
            self.s3_gateway.stop()
        if self.moto:
            self.moto.stop()
        self._close_log()

    def __enter__(self) -> RunningStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what clients need ------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What clients need. It holds the API's secret key: written 0600, logged only `redacted`."""
        assert self.stack and self.api and self.jwt_api and self.jwt_issuer
        return {
            "stack_name": self.stack.stack_name,
            "log_file": str(self.log_file) if self.log_file else None,
            "region": self.stack.region,
            "endpoint_url": self.stack.endpoint_url,
            "s3_url": self.s3_gateway.url if self.s3_gateway else self.stack.endpoint_url,
            "bucket": self.stack.bucket,
            "jobs_table": self.stack.jobs_table,
            "queue_url": self.stack.queue_url,
            "dlq_url": self.stack.dlq_url,
            "callback_base_url": f"{self.api.url}/callbacks",
            "upstream_url": self.stack.parameters["UpstreamBaseUrl"],
            **({"upstream_pool": [member.info() for member in self.pool]} if self.pool else {}),
            "event_bus": self.stack.event_bus,
            "api_key_secret_id": self.stack.api_key_secret_id,
            "webhook_secret_id": self.stack.webhook_secret_id,
            "api_url": self.api.url,
            "jwt_api_url": self.jwt_api.url,
            "api_credentials": self.api_credentials.info(),
            "jwt": self.jwt_issuer.info(),
        }

    def write_info(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds a secret key
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.info(), indent=2) + "\n")
        temporary.replace(path)  # readers never see half a file

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.functions[function].invoke(event)

    def reconcile_now(self) -> Any:
        """Run the reconciler now; like EventBridge, wait for a free worker rather than be throttled."""
        function = self.functions["ReconcileFunction"]
        return function.invoke(_schedule_event(self.options.region), wait=function.spec.timeout)

    # --- internals ------------------------------------------------------------------------

    def _open_log(self, path: Path) -> None:
        """The stack's own logging (and the emulator's) at INFO into the log file; the console keeps
        only what its handlers let through (swapdrop local: warnings and errors)."""
        self._log = LogFile(path)
        self._log_handler = LogFileHandler(self._log)
        for name in STACK_LOGGERS:
            logger = logging.getLogger(name)
            self._logger_levels[name] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self._log_handler)

    def _close_log(self) -> None:
        if self._log_handler:
            for name, level in self._logger_levels.items():
                logging.getLogger(name).removeHandler(self._log_handler)
                logging.getLogger(name).setLevel(level)
        if self._log:
            self._log.close()

    def _start_emulators(self) -> str:
        """The emulator (or the pool's emulators, each its own port and instance id); the first one's URL."""
        from swapdrop_emulator import EmulatorConfig, SwapEmulator

        options = self.options
        size = options.upstream_pool
        if size is None:
            config = EmulatorConfig(api_key=options.api_key, auth_style=options.auth_style, **options.emulator)
            self.emulator = SwapEmulator(config).start()
            self.emulators.append(self.emulator)
            return self.emulator.url
        if not 1 <= size <= MAX_POOL_MEMBERS:
            raise ValueError(f"upstream_pool must be 1 to {MAX_POOL_MEMBERS} members, got {size}")
        if len(options.pool_members) > size:
            raise ValueError(f"pool_members has {len(options.pool_members)} entries for a pool of {size}")
        for index in range(size):
            number = index + 1
            fields = {"concurrency": POOL_RUNNING, "queue_size": POOL_QUEUED, "instance_id": f"instance-{number}"}
            fields |= options.emulator
            fields |= options.pool_members[index] if index < len(options.pool_members) else {}
            config = EmulatorConfig(api_key=options.api_key, auth_style=options.auth_style, **fields)
            emulator = SwapEmulator(config).start()
            self.emulators.append(emulator)
            self.pool.append(
                PoolMemberInfo(
                    f"emulator-{number}", emulator.url, config.instance_id, config.concurrency, config.queue_size
                )
            )
        self.emulator = self.emulators[0]
        return self.emulator.url

    def _environment(self, endpoint: str, function_env: dict[str, str]) -> dict[str, str]:
        assert self.s3_gateway is not None
        return {
            **function_env,
            "AWS_ENDPOINT_URL": endpoint,
            # S3 through the gateway, so the URLs and forms the functions presign are checked as on AWS
            # (botocore takes the service's own endpoint variable over AWS_ENDPOINT_URL).
            "AWS_ENDPOINT_URL_S3": self.s3_gateway.url,
            "AWS_ACCESS_KEY_ID": FUNCTION_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FUNCTION_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.options.region,
            "AWS_REGION": self.options.region,
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.options.function_environment,
        }

    def _workers_for(self, spec: FunctionSpec) -> int:
        wanted = spec.reserved_concurrency or DEFAULT_WORKERS.get(spec.name, 1)
        return max(1, min(self.options.max_workers, wanted))

    def _lambda(self, name: str, wait: float | None = None):
        """The function as a handler; `wait`: how long to wait for a free worker (None: throttle soon)."""

        def handler(event: dict[str, Any], _context: Any) -> Any:
            return self.functions[name].invoke(event, wait=wait)

        return handler

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_webhooks(self, specs: dict[str, FunctionSpec]) -> None:
        """WebhookQueue → WebhookFunction, with the template's batch size (one poller: the local load is small)."""
        spec = specs.get("WebhookFunction")
        if spec is None or not self.stack or not self.stack.webhook_queue_url:
            return
        sqs_events = [e for e in spec.events.values() if e["Type"] == "SQS"]
        batch_size = int(sqs_events[0]["Properties"].get("BatchSize", 5)) if sqs_events else 5
        source = SqsEventSource(
            local_client("sqs", self.options.region, self.stack.endpoint_url),
            self.stack.webhook_queue_url,
            self._lambda("WebhookFunction", wait=spec.timeout),
            "WebhookFunction",
            batch_size=batch_size,
            function_timeout=spec.timeout,
        )
        self._spawn("webhook-poller", self._poll_forever, source)

    def _poll_swap_requests(self, specs: dict[str, FunctionSpec], endpoint: str) -> None:
        """SwapRequestQueue (fed by SwapRequestRule on the local bus) into RequestFunction, as Lambda's
        SQS event source does: the template's batch size, as many pollers as the function has workers."""
        assert self.stack is not None and self.stack.resolver is not None
        queue_url = self.stack.resolver.refs.get("SwapRequestQueue")
        spec = specs.get("RequestFunction")
        if not queue_url or spec is None:
            return
        (props,) = [e["Properties"] for e in spec.events.values() if e["Type"] == "SQS"]
        sqs = local_client("sqs", self.options.region, endpoint)
        if self.options.visibility_timeout is not None:
            sqs.set_queue_attributes(
                QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(self.options.visibility_timeout)}
            )
        for index in range(self._workers_for(spec)):
            source = SqsEventSource(
                local_client("sqs", self.options.region, endpoint),
                queue_url,
                self._lambda("RequestFunction", wait=spec.timeout),
                "RequestFunction",
                batch_size=int(props.get("BatchSize", 10)),
                function_timeout=spec.timeout,
            )
            self._spawn(f"request-poller-{index}", self._poll_forever, source)

    def _poll_forever(self, source: SqsEventSource) -> None:
        while not self._stop.is_set():
            try:
                source.poll_once(wait_seconds=self.options.poll_wait_seconds)
            except Exception:  # moto going away at shutdown, a broken batch: keep polling
                if not self._stop.is_set():
                    log.exception("SQS poll failed")
                    self._stop.wait(1)

    def _reconcile_forever(self) -> None:
        while not self._stop.wait(self.options.reconcile_interval):
            try:
                self.reconcile_now()
                self.reconcile_runs += 1
            except Exception:
                if not self._stop.is_set():
                    log.exception("reconciler run failed")


def redacted(info: dict[str, Any]) -> dict[str, Any]:
    """`info` without the API's secret key, for logs and the console."""
    credentials = dict(info.get("api_credentials") or {})
    if credentials.get("secret_access_key"):
        credentials["secret_access_key"] = "****"  # noqa: S105 - the mask, not a secret
    return {**info, "api_credentials": credentials} if credentials else dict(info)


def http_api_routes(resolver: Resolver, specs: dict[str, FunctionSpec], handler_for: Any) -> list[Route]:
    """Every HttpApi event of the template's functions as a Route, with the authorizer it gets on AWS."""
    routes = []
    for name, spec in specs.items():
        for event_name, event in spec.events.items():
            if event["Type"] != "HttpApi":
                continue
            props = event["Properties"]
            timeout = int(props.get("TimeoutInMillis", 30000)) / 1000
            auth = route_auth(resolver, name, event_name)
            routes.append(Route(props["Method"].upper(), props["Path"], handler_for(name), name, timeout, auth))
    return routes


def route_auth(resolver: Resolver, function: str, event_name: str) -> str:
    """NONE, AWS_IAM or JWT: the event's Auth.Authorizer, else its API's DefaultAuthorizer (SAM's rule).

    Anything the local stack cannot check is an error here, never an open route."""
    template = resolver.template
    raw = template["Resources"][function]["Properties"]["Events"][event_name]["Properties"]
    api_id = raw.get("ApiId")
    if api_id is None:  # SAM's implicit API: its settings come from Globals
        api_auth = resolver.resolve(template.get("Globals", {}).get("HttpApi", {}).get("Auth", {}))
    elif isinstance(api_id, dict) and set(api_id) == {"Ref"} and api_id["Ref"] in template["Resources"]:
        api_auth = resolver.resolve(template["Resources"][api_id["Ref"]].get("Properties", {}).get("Auth", {}))
    else:
        raise ValueError(f"{function}.{event_name}: ApiId must be !Ref of an API in the template, got {api_id!r}")
    authorizer = (resolver.resolve(raw.get("Auth") or {}) or {}).get("Authorizer") or api_auth.get(
        "DefaultAuthorizer", "NONE"
    )
    if authorizer == "NONE":
        return "NONE"
    if authorizer == "AWS_IAM":
        if str(api_auth.get("EnableIamAuthorizer")).lower() != "true":
            raise ValueError(f"{function}.{event_name}: AWS_IAM needs EnableIamAuthorizer: true on its API (SAM)")
        return "AWS_IAM"
    if "JwtConfiguration" in (api_auth.get("Authorizers") or {}).get(authorizer, {}):
        return "JWT"
    raise ValueError(f"{function}.{event_name}: authorizer {authorizer!r} is not one the local HTTP API can check")


def _default_stack_name(number: int) -> str:
    return "swapdrop-local" if number == 1 else f"swapdrop-local-{number}"


def _new_log_file(stack_name: str) -> Path:
    descriptor, path = tempfile.mkstemp(prefix=f"{stack_name}-", suffix=".log")
    os.close(descriptor)
    return Path(path)


def _schedule_event(region: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "version": "0",
        "id": f"local-{int(time.time())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now,
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/swapdrop-local-reconcile"],
        "detail": {},
    }
