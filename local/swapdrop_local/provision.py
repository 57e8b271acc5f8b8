"""Create the template's stateful resources on moto's server and resolve every function's
environment against them, so handlers run locally with exactly the configuration of AWS."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import boto3

from swapdrop_local.alarms import create_monitoring
from swapdrop_local.template import LOCAL_ACCOUNT, Resolver, function_environment, load_template, resources_of_type

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def local_client(service: str, region: str, endpoint_url: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url, **LOCAL_CREDENTIALS)


def local_table(table_name: str, region: str, endpoint_url: str) -> Any:
    """A DynamoDB Table resource on moto's server (plain Python values in and out)."""
    resource = boto3.resource("dynamodb", region_name=region, endpoint_url=endpoint_url, **LOCAL_CREDENTIALS)
    return resource.Table(table_name)


@dataclass
class LocalStack:
    region: str
    endpoint_url: str
    bucket: str
    jobs_table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    event_bus: str
    api_key_secret_id: str
    callback_token_secret_id: str
    idempotency_table: str = ""
    """Powertools idempotency records of the jobs API (IdempotencyTable)."""
    webhook_secret_id: str = ""
    """WebhookSecret: JSON {"current", "previous"}; receivers' keys via swapdrop.webhook_signing.receiver_keys."""
    webhook_queue_url: str = ""
    stack_name: str = "swapdrop-local"
    log_groups: dict[str, str] = field(default_factory=dict)
    """Each function's log group (its LoggingConfig.LogGroup resolved, else /aws/lambda/<name>)."""
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)
    resolver: Resolver | None = None
    """Resolves the template's intrinsics against these local resources."""

    def client(self, service: str) -> Any:
        return local_client(service, self.region, self.endpoint_url)


def provision(
    endpoint_url: str,
    region: str,
    callback_base_url: str,
    parameter_overrides: dict[str, Any] | None = None,
    api_key: str = "local-api-key",
    stack_name: str = "swapdrop-local",
) -> LocalStack:
    template = load_template()
    resolver = Resolver(template, region=region, stack_name=stack_name)
    resolver.parameters.update(parameter_overrides or {})

    sqs, s3, ddb, sm, events = (
        local_client(s, region, endpoint_url) for s in ("sqs", "s3", "dynamodb", "secretsmanager", "events")
    )
    queues = resources_of_type(template, "AWS::SQS::Queue")
    # dead-letter queues first: the others name them in their redrive policies
    for name in sorted(queues, key=lambda n: "RedrivePolicy" in queues[n].get("Properties", {})):
        _create_queue(sqs, resolver, name, queues[name].get("Properties", {}))
    for name, spec in resources_of_type(template, "AWS::DynamoDB::Table").items():
        _create_table(ddb, resolver, name, resolver.resolve(spec["Properties"]))
    for name, spec in resources_of_type(template, "AWS::Events::EventBus").items():
        bus = resolver.resolve(spec["Properties"]["Name"])
        arn = events.create_event_bus(Name=bus)["EventBusArn"]
        resolver.refs[name], resolver.attributes[(name, "Arn")], resolver.attributes[(name, "Name")] = bus, arn, bus
    for name, spec in resources_of_type(template, "AWS::Events::Rule").items():
        _create_rule(events, resolver, name, resolver.resolve(spec["Properties"]))
    for name, spec in resources_of_type(template, "AWS::SecretsManager::Secret").items():
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        value = api_key if name == "ApiKeySecret" else _generated_secret(spec.get("Properties", {}))
        arn = sm.create_secret(Name=f"{stack_name}-{name}", SecretString=value)["ARN"]
        resolver.refs[name] = arn
    for name, spec in resources_of_type(template, "AWS::S3::Bucket").items():
        _create_bucket(s3, resolver, name, spec["Properties"], stack_name)
    # The HTTP API is the local HTTP adapter. The optional JwtApi (raw ApiGatewayV2 resources
    # under HasJwt) is not created: the local runtime checks JWTs itself.
    resolver.refs["CallbackApi"] = "local"
    _name_functions(resolver)
    log_groups = _create_log_groups(local_client("logs", region, endpoint_url), resolver)
    create_monitoring(
        resolver, local_client("sns", region, endpoint_url), local_client("cloudwatch", region, endpoint_url)
    )
    environments = {}
    for function in resources_of_type(template, "AWS::Serverless::Function"):
        env = function_environment(template, resolver, function)
        if "CALLBACK_BASE_URL" in env:  # API Gateway's URL on AWS; the local HTTP adapter's here
            env["CALLBACK_BASE_URL"] = callback_base_url.rstrip("/") + "/callbacks"
        env["ALLOW_PRIVATE_RESULT_URLS"] = "true"  # the local swap API serves results on loopback
        environments[function] = env
    return LocalStack(
        region=region,
        endpoint_url=endpoint_url,
        bucket=resolver.refs["MediaBucket"],
        jobs_table=resolver.refs["JobsTable"],
        queue_url=resolver.refs["SubmitQueue"],
        queue_arn=resolver.attributes[("SubmitQueue", "Arn")],
        dlq_url=resolver.refs["SubmitDeadLetterQueue"],
        event_bus=resolver.refs["JobEventBus"],
        api_key_secret_id=resolver.refs.get("ApiKeySecret", ""),
        callback_token_secret_id=resolver.refs["CallbackTokenSecret"],
        idempotency_table=resolver.refs.get("IdempotencyTable", ""),
        webhook_secret_id=resolver.refs.get("WebhookSecret", ""),
        webhook_queue_url=resolver.refs.get("WebhookQueue", ""),
        stack_name=stack_name,
        log_groups=log_groups,
        environments=environments,
        parameters=dict(resolver.parameters),
        template=template,
        resolver=resolver,
    )


def _name_functions(resolver: Resolver) -> None:
    """Locally a function's name is its logical id (what its LambdaContext reports)."""
    for name in resources_of_type(resolver.template, "AWS::Serverless::Function"):
        resolver.refs[name] = name
        resolver.attributes[(name, "Arn")] = f"arn:aws:lambda:{resolver.region}:{LOCAL_ACCOUNT}:function:{name}"


def _create_log_groups(logs: Any, resolver: Resolver) -> dict[str, str]:
    """The template's log groups on moto (CloudFormation's generated name: <stack>-<LogicalId>), and each
    function's group as Lambda picks it: LoggingConfig.LogGroup, else /aws/lambda/<function name>."""
    created = set()
    for name, spec in resources_of_type(resolver.template, "AWS::Logs::LogGroup").items():
        if "Condition" in spec and not resolver.condition(spec["Condition"]):
            continue
        properties = spec.get("Properties", {})
        group = resolver.resolve(properties.get("LogGroupName", f"{resolver.stack_name}-{name}"))
        logs.create_log_group(logGroupName=group)
        created.add(group)
        if "RetentionInDays" in properties:
            days = int(resolver.resolve(properties["RetentionInDays"]))
            logs.put_retention_policy(logGroupName=group, retentionInDays=days)
        resolver.refs[name] = group
        resolver.attributes[(name, "Arn")] = f"arn:aws:logs:{resolver.region}:{LOCAL_ACCOUNT}:log-group:{group}:*"
    groups = {}
    for function, spec in resources_of_type(resolver.template, "AWS::Serverless::Function").items():
        config = resolver.resolve(spec["Properties"].get("LoggingConfig") or {})
        group = config.get("LogGroup") or f"/aws/lambda/{resolver.refs.get(function, function)}"
        if group not in created:
            logs.create_log_group(logGroupName=group)
            created.add(group)
        groups[function] = group
    return groups


def _generated_secret(properties: dict[str, Any]) -> str:
    """A random value as GenerateSecretString makes it: JSON (SecretStringTemplate + GenerateStringKey) or plain."""
    generate = properties.get("GenerateSecretString") or {}
    value = secrets.token_urlsafe(48)
    if "GenerateStringKey" in generate:
        template = json.loads(generate.get("SecretStringTemplate", "{}"))
        return json.dumps({**template, generate["GenerateStringKey"]: value})
    return value


def _create_queue(sqs: Any, resolver: Resolver, name: str, properties: dict[str, Any]) -> None:
    attributes: dict[str, str] = {}
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
        if key in properties:
            attributes[key] = str(resolver.resolve(properties[key]))
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(resolver.resolve(properties["RedrivePolicy"]))
    queue_name = f"{resolver.stack_name}-{name}"
    url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    resolver.refs[name] = url
    resolver.attributes[(name, "Arn")] = f"arn:aws:sqs:{resolver.region}:{LOCAL_ACCOUNT}:{queue_name}"
    resolver.attributes[(name, "QueueName")] = queue_name


def _create_rule(events: Any, resolver: Resolver, name: str, properties: dict[str, Any]) -> None:
    """A rule on a bus with its targets (moto's EventBridge delivers to SQS targets, `anything-but` included)."""
    rule_name = f"{resolver.stack_name}-{name}"
    bus = properties.get("EventBusName", "default")
    arn = events.put_rule(
        Name=rule_name,
        EventBusName=bus,
        EventPattern=json.dumps(properties["EventPattern"]),
        State=properties.get("State", "ENABLED"),
        **({"Description": properties["Description"]} if "Description" in properties else {}),
    )["RuleArn"]
    targets = [
        {"Id": target["Id"], "Arn": target["Arn"]}  # AWS's retry and dead-letter settings do not apply locally
        for target in properties.get("Targets", [])
    ]
    if targets:
        events.put_targets(Rule=rule_name, EventBusName=bus, Targets=targets)
    resolver.refs[name] = f"{bus}|{rule_name}"  # what CloudFormation's Ref of a rule on a custom bus answers
    resolver.attributes[(name, "Arn")] = arn


def _create_table(ddb: Any, resolver: Resolver, name: str, properties: dict[str, Any]) -> None:
    table_name = f"{resolver.stack_name}-{name}"
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    ddb.create_table(**request)
    ddb.get_waiter("table_exists").wait(TableName=table_name)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    resolver.refs[name] = table_name
    resolver.attributes[(name, "Arn")] = f"arn:aws:dynamodb:{resolver.region}:{LOCAL_ACCOUNT}:table/{table_name}"


def _create_bucket(s3: Any, resolver: Resolver, name: str, properties: dict[str, Any], stack_name: str) -> None:
    bucket = f"{stack_name}-{name.lower()}"
    if resolver.region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": resolver.region})
    resolver.refs[name] = bucket
    resolver.attributes[(name, "Arn")] = f"arn:aws:s3:::{bucket}"
    versioning = resolver.resolve(properties.get("VersioningConfiguration", {})).get("Status")
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
    notification = resolver.resolve(properties.get("NotificationConfiguration", {}))
    queue_configs = [
        {
            "QueueArn": config["Queue"],
            "Events": [config["Event"]],
            **({"Filter": {"Key": {"FilterRules": config["Filter"]["S3Key"]["Rules"]}}} if "Filter" in config else {}),
        }
        for config in notification.get("QueueConfigurations", [])
    ]
    if queue_configs:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queue_configs}
        )
