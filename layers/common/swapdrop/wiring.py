"""Build the real dependencies from Settings, once per Lambda container.

Handlers ask here for a ready service; tests build services from fakes instead.
boto3 clients honour AWS_ENDPOINT_URL, which is how the local stack points them at moto.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from swapdrop.config import Settings, settings

if TYPE_CHECKING:  # each builder imports what it builds: a function's cold start loads only its own path
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from swapdrop.finishing import JobFinisher
    from swapdrop.job_store import DynamoJobStore
    from swapdrop.jobs_api.idempotency import IdempotentPosts
    from swapdrop.jobs_api.service import JobsService
    from swapdrop.media_store import S3MediaStore
    from swapdrop.reconciler import Reconciler
    from swapdrop.snapshots import CallbackReceiver
    from swapdrop.submission import Submitter
    from swapdrop.submit_queue import SubmitQueue
    from swapdrop.swap_requests import SwapRequests
    from swapdrop.upstream import UpstreamClient
    from swapdrop.upstream_pool import UpstreamPool
    from swapdrop.webhook_delivery import WebhookDeliverer
    from swapdrop.webhooks import WebhookHandOver, WebhookQueue


@cache
def _secrets() -> SecretsProvider:
    """On the container's one Secrets Manager client: built without one, the provider makes its own boto3
    session, which reloads botocore's data (about 55 ms of CPU at every cold start, bench_cold_start.py)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=_client("secretsmanager"))


@cache
def _client(service: str) -> Any:
    """One client per service and container (clients are thread-safe, and each costs start-up time):
    the submitter's queue and the webhook hand-over share one SQS client, the finisher and the
    entrance's rejections one EventBridge client."""
    import boto3

    return boto3.client(service)


def job_store(config: Settings) -> DynamoJobStore:
    import boto3

    from swapdrop.job_store import DynamoJobStore

    table = boto3.resource("dynamodb").Table(config.jobs_table_name)
    return DynamoJobStore(table, config.open_jobs_index_name, config.legacy_open_jobs_index_name)


def upstream_client(config: Settings) -> UpstreamClient:
    from swapdrop.secrets import secret_reader
    from swapdrop.upstream import UpstreamClient

    return UpstreamClient(
        base_url=config.upstream_base,
        api_key=secret_reader(config.upstream_api_key_secret_id, _secrets()),
        auth_style=config.upstream_auth_style,
        timeout_seconds=config.upstream_timeout_seconds,
    )


def upstream_pool(config: Settings) -> UpstreamPool:
    """Every swap-API member the key secret names (a plain key: one member, from the parameters)."""
    from swapdrop.secrets import secret_reader
    from swapdrop.upstream_pool import UpstreamPool

    return UpstreamPool(
        read_secret=secret_reader(config.upstream_api_key_secret_id, _secrets()),
        default_base_url=config.upstream_base,
        default_auth_style=config.upstream_auth_style,
        default_instance_id=config.upstream_instance_id,
        timeout_seconds=config.upstream_timeout_seconds,
    )


def media_store(config: Settings) -> S3MediaStore:
    import boto3
    from botocore.config import Config

    from swapdrop.media_store import S3MediaStore

    # SigV4 presigned URLs and forms (the jobs API's): the default SigV2 presign is refused in newer regions.
    return S3MediaStore(boto3.client("s3", config=Config(signature_version="s3v4")), config.bucket_name)


def finisher(
    config: Settings, jobs: DynamoJobStore, media: S3MediaStore, copy_budget: float | None = None
) -> JobFinisher:
    """Shares the caller's store and S3 client: each client costs cold-start time."""
    from swapdrop.finishing import JobFinisher
    from swapdrop.job_events import EventBridgePublisher
    from swapdrop.jobs import SFN
    from swapdrop.result_download import DEFAULT_BUDGET_SECONDS, ResultDownloader
    from swapdrop.task_tokens import TaskTokenAnswerer

    return JobFinisher(
        jobs=jobs,
        media=media,
        downloader=ResultDownloader(
            max_bytes=config.max_image_bytes * 4,
            allow_private=config.allow_private_result_urls,
            budget_seconds=DEFAULT_BUDGET_SECONDS if copy_budget is None else copy_budget,
        ),
        events=EventBridgePublisher(_client("events"), config.event_bus_name),
        consumers={**webhook_consumers(config), SFN: TaskTokenAnswerer(_stepfunctions)},
    )


@cache
def _stepfunctions() -> Any:
    """One Step Functions client per container, built when the first task token is answered (not at
    cold start: most jobs carry none). Bounded timeouts: the outbox retries what does not get through."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        config=Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}),
    )


def webhook_consumers(config: Settings) -> dict[str, WebhookHandOver]:
    """The WEBHOOK outbox consumer, for functions that know the WebhookQueue (else the reconciler's does it)."""
    if not config.webhook_queue_url:
        return {}
    from swapdrop.jobs import WEBHOOK
    from swapdrop.webhooks import WebhookHandOver, WebhookQueue

    return {WEBHOOK: WebhookHandOver(WebhookQueue(_client("sqs"), config.webhook_queue_url))}


@cache
def webhook_deliverer() -> WebhookDeliverer:
    from swapdrop.secrets import secret_reader
    from swapdrop.webhook_delivery import WebhookDeliverer
    from swapdrop.webhook_sender import WebhookSender
    from swapdrop.webhook_signing import WebhookSigner

    config = settings()
    return WebhookDeliverer(
        jobs=job_store(config),
        signer=WebhookSigner(secret_reader(config.webhook_secret_id, _secrets())),
        sender=WebhookSender(allow_private=config.allow_private_webhook_urls),
        retry_scale=config.webhook_retry_scale,
    )


@cache
def webhook_queue() -> WebhookQueue:
    from swapdrop.webhooks import WebhookQueue

    config = settings()
    return WebhookQueue(_client("sqs"), config.webhook_queue_url, config.webhook_dead_letter_queue_url)


@cache
def submitter() -> Submitter:
    from swapdrop.result_download import ResultDownloader
    from swapdrop.secrets import secret_reader
    from swapdrop.submission import SubmitPolicy, Submitter

    config = settings()
    jobs, media = job_store(config), media_store(config)
    return Submitter(
        jobs=jobs,
        media=media,
        upstream=upstream_pool(config),
        finisher=finisher(config, jobs, media),
        callback_secret=secret_reader(config.callback_token_secret_id, _secrets()),
        policy=SubmitPolicy(
            bucket=config.bucket_name,
            callback_base_url=config.callback_base,
            max_image_bytes=config.max_image_bytes,
            max_attempts=config.max_submit_attempts,
            instance_id=config.upstream_instance_id,
            capacity_retry_seconds=config.capacity_retry_seconds,
        ),
        target_source=ResultDownloader(
            max_bytes=config.max_image_bytes, allow_private=config.allow_private_result_urls
        ),
    )


@cache
def callback_receiver() -> CallbackReceiver:
    from swapdrop.result_download import CALLBACK_BUDGET_SECONDS
    from swapdrop.secrets import secret_reader
    from swapdrop.snapshots import CallbackReceiver, SnapshotApplier

    config = settings()
    jobs = job_store(config)
    return CallbackReceiver(
        jobs=jobs,
        applier=SnapshotApplier(jobs, finisher(config, jobs, media_store(config), CALLBACK_BUDGET_SECONDS)),
        token_secret=secret_reader(config.callback_token_secret_id, _secrets()),
    )


@cache
def reconciler() -> Reconciler:
    from swapdrop.reconciler import Reconciler
    from swapdrop.snapshots import SnapshotApplier

    config = settings()
    jobs = job_store(config)
    done = finisher(config, jobs, media_store(config))
    return Reconciler(
        jobs=jobs,
        upstream=upstream_pool(config),
        applier=SnapshotApplier(jobs, done),
        finisher=done,
        job_timeout_minutes=config.job_timeout_minutes,
        quiet_seconds=config.reconcile_quiet_seconds,
        upload_grace_seconds=config.upload_grace_seconds,
        max_queue_wait_hours=config.max_queue_wait_hours,
    )


def reset() -> None:
    """Forget every built service (tests and the local stack change the environment)."""
    built_once = (settings, _secrets, _client, _stepfunctions, submitter, callback_receiver, reconciler, submit_queue)
    built_once += (api_service, api_idempotency, swap_requests, webhook_deliverer, webhook_queue)
    for built in built_once:
        built.cache_clear()


@cache
def submit_queue() -> SubmitQueue:
    from swapdrop.submit_queue import SubmitQueue

    return SubmitQueue(_client("sqs"))


API_KEY_PLACEHOLDER = "REPLACE_WITH_THE_SWAP_API_KEY"
"""What the template's generated ApiKeySecret holds until someone puts the real key there (GET /health)."""


@cache
def api_service() -> JobsService:
    from swapdrop.jobs_api.cursor import CursorSigner
    from swapdrop.jobs_api.service import ApiPolicy, JobsService
    from swapdrop.secrets import secret_reader
    from swapdrop.submit_queue import JobMessages

    config = settings()
    jobs, media = job_store(config), media_store(config)
    api_key = secret_reader(config.upstream_api_key_secret_id, _secrets())
    upstream = cache(lambda: upstream_pool(config))  # on the first cancel, not per cancel nor at cold start
    return JobsService(
        jobs=jobs,
        media=media,
        sender=JobMessages(_client("sqs"), config.submit_queue_url),
        finisher=finisher(config, jobs, media),
        cancel_upstream=lambda task_id, member: upstream().cancel_task(task_id, member),  # on the task's member
        cursors=CursorSigner(secret_reader(config.callback_token_secret_id, _secrets())),
        api_key_set=lambda: api_key() not in ("", API_KEY_PLACEHOLDER),
        policy=ApiPolicy(
            bucket=config.bucket_name,
            max_image_bytes=config.max_image_bytes,
            upload_url_seconds=config.upload_url_seconds,
            result_url_seconds=config.result_url_seconds,
            allow_private_urls=config.allow_private_result_urls,
            allow_private_webhook_urls=config.allow_private_webhook_urls,
            version=config.swapdrop_version,
        ),
    )


@cache
def api_idempotency() -> IdempotentPosts:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from swapdrop.jobs_api.idempotency import IdempotentPosts

    table = settings().idempotency_table_name
    return IdempotentPosts(DynamoDBPersistenceLayer(table_name=table, boto3_client=_client("dynamodb")))


@cache
def swap_requests() -> SwapRequests:
    """RequestFunction: Swap Requested events through the jobs API's own service and idempotency table."""
    from swapdrop.swap_requests import EventBridgeRejections, SwapRequests

    rejections = EventBridgeRejections(_client("events"), settings().event_bus_name)
    return SwapRequests(api_service(), api_idempotency(), rejections)
