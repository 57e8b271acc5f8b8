"""The local stack's AWS call counter (swapdrop_local.aws_calls): real botocore requests to moto's server,
each counted once under the caller its User-Agent's app id names, with the operation it was."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from swapdrop_local.aws_calls import LOCAL_STACK, AwsCallLog, CountingMotoServer
from swapdrop_local.provision import LOCAL_CREDENTIALS


@pytest.fixture(scope="module")
def server() -> Iterator[CountingMotoServer]:
    server = CountingMotoServer(AwsCallLog())
    server.start()
    yield server
    server.stop()


def client(server: CountingMotoServer, service: str, app: str | None) -> object:
    host, port = server.get_host_and_port()
    config = Config(user_agent_appid=app) if app else None
    return boto3.client(
        service, region_name="us-east-1", endpoint_url=f"http://{host}:{port}", config=config, **LOCAL_CREDENTIALS
    )


def test_each_request_is_counted_under_its_app_id_with_its_operation(server: CountingMotoServer) -> None:
    setup = client(server, "s3", None)
    setup.create_bucket(Bucket="counted")
    ddb_setup = client(server, "dynamodb", None)
    ddb_setup.create_table(
        TableName="counted",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs_setup = client(server, "sqs", None)
    queue = sqs_setup.create_queue(QueueName="counted")["QueueUrl"]
    mark = server.calls.mark()

    s3, ddb = client(server, "s3", "SubmitFunction"), client(server, "dynamodb", "SubmitFunction")
    s3.put_object(Bucket="counted", Key="faces/a b.jpg", Body=b"x")
    s3.get_object(Bucket="counted", Key="faces/a b.jpg")
    s3.head_object(Bucket="counted", Key="faces/a b.jpg")
    s3.list_objects_v2(Bucket="counted", Prefix="faces/")
    ddb.put_item(TableName="counted", Item={"k": {"S": "1"}})
    ddb.get_item(TableName="counted", Key={"k": {"S": "1"}})
    sqs = client(server, "sqs", "CallbackFunction")
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    received = sqs_setup.receive_message(QueueUrl=queue)

    counted = AwsCallLog.by_caller(server.calls.since(mark))
    assert counted["SubmitFunction"] == Counter(
        {
            "s3:PutObject": 1,
            "s3:GetObject": 1,
            "s3:HeadObject": 1,
            "s3:ListObjectsV2": 1,
            "dynamodb:PutItem": 1,
            "dynamodb:GetItem": 1,
        }
    )
    assert counted["CallbackFunction"] == Counter({"sqs:SendMessage": 1})
    assert counted[LOCAL_STACK] == Counter({"sqs:ReceiveMessage": 1})
    assert [m["Body"] for m in received["Messages"]] == ["hello"], "counting took nothing from the request"


def test_a_query_protocol_body_is_read_for_its_action_and_still_reaches_moto(server: CountingMotoServer) -> None:
    iam = client(server, "iam", "ReconcileFunction")  # IAM speaks the query protocol (a form body)
    mark = server.calls.mark()
    iam.create_user(UserName="counted-user")
    assert iam.get_user(UserName="counted-user")["User"]["UserName"] == "counted-user"
    assert [(c.caller, c.service, c.operation) for c in server.calls.since(mark)] == [
        ("ReconcileFunction", "iam", "CreateUser"),
        ("ReconcileFunction", "iam", "GetUser"),
    ]
