"""The local stack's saved state: what a snapshot keeps comes back as it was, and snapshots see no request
half-done."""

from __future__ import annotations

import threading
from pathlib import Path

import boto3
from gateway_local.persistence import GatedApp, PauseGate, Snapshotter, StateStore, moto_ungated
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

REGION = "us-east-1"


def make_resources() -> None:
    boto3.client("dynamodb").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("sqs").create_queue(QueueName="intake")
    boto3.client("s3").create_bucket(Bucket="results")
    boto3.client("secretsmanager").create_secret(Name="signing-key", SecretString="generated")


def test_state_snapshot_restored_into_fresh_resources_is_the_same_state(tmp_path: Path) -> None:
    store = StateStore(tmp_path, DEFAULT_ACCOUNT_ID, REGION)
    with mock_aws():
        make_resources()
        dynamodb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
        item = {"order_id": {"S": "o-1"}, "results_gz": {"B": b"\x1f\x8b\x00"}, "n": {"N": "3"}}
        dynamodb.put_item(TableName="orders", Item=item)
        url = sqs.get_queue_url(QueueName="intake")["QueueUrl"]
        attributes = {"message_type": {"DataType": "String", "StringValue": "gateway.order.accepted"}}
        sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "o-1"}', MessageAttributes=attributes)
        s3.put_object(Bucket="results", Key="orders/o-1/a.tif", Body=b"landed", Metadata={"md5": "x"})
        landed = s3.head_object(Bucket="results", Key="orders/o-1/a.tif")
        upload = s3.create_multipart_upload(Bucket="results", Key="orders/o-1/big.tif")["UploadId"]
        first = s3.upload_part(
            Bucket="results", Key="orders/o-1/big.tif", UploadId=upload, PartNumber=1, Body=b"1" * 5 * 2**20
        )
        snapshotter = Snapshotter(store, PauseGate(), planet_state=lambda: b"planet orders")
        snapshotter.snapshot_now()

    with mock_aws():  # a new process: moto starts empty, the template's resources are created again
        make_resources()
        boto3.client("secretsmanager").put_secret_value(SecretId="signing-key", SecretString="new random")
        snapshot = store.load()
        assert snapshot is not None
        store.restore(snapshot, boto3.client)
        dynamodb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")

        assert dynamodb.get_item(TableName="orders", Key={"order_id": {"S": "o-1"}})["Item"] == item
        url = sqs.get_queue_url(QueueName="intake")["QueueUrl"]
        (message,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
        assert (message["Body"], message["MessageAttributes"]["message_type"]["StringValue"]) == (
            '{"order_id": "o-1"}',
            "gateway.order.accepted",
        )
        again = s3.head_object(Bucket="results", Key="orders/o-1/a.tif")
        assert (again["ETag"], again["LastModified"], again["Metadata"]) == (
            landed["ETag"],
            landed["LastModified"],
            {"md5": "x"},
        )
        # The upload in progress goes on where it was.
        last = s3.upload_part(
            Bucket="results", Key="orders/o-1/big.tif", UploadId=upload, PartNumber=2, Body=b"2"
        )
        s3.complete_multipart_upload(
            Bucket="results",
            Key="orders/o-1/big.tif",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]
            },
        )
        body = s3.get_object(Bucket="results", Key="orders/o-1/big.tif")["Body"].read()
        assert body == b"1" * 5 * 2**20 + b"2"
        secret = boto3.client("secretsmanager").get_secret_value(SecretId="signing-key")["SecretString"]
        assert secret == "generated"
        assert snapshot.planet == b"planet orders"


def test_state_snapshot_writes_an_unchanged_object_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path, DEFAULT_ACCOUNT_ID, REGION)
    with mock_aws():
        make_resources()
        boto3.client("s3").put_object(Bucket="results", Key="a", Body=b"x" * 1000)
        _, first = store.capture(None)
        _, second = store.capture(None)
    assert (len(first), len(second)) == (1, 0)


def test_pause_gate_snapshot_waits_for_requests_in_progress_and_holds_new_ones() -> None:
    gate = PauseGate()
    inside, release, snapshot_taken = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def request(name: str) -> None:
        with gate.request():
            order.append(f"{name} in")
            inside.set()
            release.wait(5)
            order.append(f"{name} out")

    def snapshot() -> None:
        with gate.exclusive():
            order.append("snapshot")
        snapshot_taken.set()

    first = threading.Thread(target=request, args=("first",))
    first.start()
    assert inside.wait(5)
    writer = threading.Thread(target=snapshot)
    writer.start()
    while not gate._writers_waiting:  # the snapshot is waiting for the first request
        threading.Event().wait(0.01)
    inside.clear()
    second = threading.Thread(target=request, args=("second",))
    second.start()
    release.set()
    for thread in (first, writer, second):
        thread.join(5)

    assert order == ["first in", "first out", "snapshot", "second in", "second out"]
    assert snapshot_taken.is_set()


def test_gated_app_lets_lambda_invocations_and_sqs_receives_through() -> None:
    assert moto_ungated({"PATH_INFO": "/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/invocations"})
    assert moto_ungated({"PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"})
    assert not moto_ungated({"PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"})
    gate = PauseGate()
    gate.dirty = False
    app = GatedApp(lambda environ, start: [b"ok"], gate, moto_ungated)
    assert app({"PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, None) == [b"ok"]
    assert gate.dirty is False  # a receive changes nothing a snapshot keeps
    assert app({"PATH_INFO": "/"}, None) == [b"ok"]
    assert gate.dirty is True


def test_fake_planet_orders_survive_export_and_import() -> None:
    from datetime import UTC, datetime

    from planet_fake.config import FakePlanetConfig
    from planet_fake.orders import Order
    from planet_fake.store import FakePlanetStore

    config = FakePlanetConfig(queued_seconds=0, running_seconds=60)
    before = FakePlanetStore(config)
    body = {
        "name": "n",
        "products": [{"item_ids": ["a"], "item_type": "PSScene", "product_bundle": "analytic_udm2"}],
    }
    created = datetime(2026, 1, 1, tzinfo=UTC)
    order = Order.create("key", body, config, created)
    before.add_order(order)

    after = FakePlanetStore(FakePlanetConfig())
    assert after.import_state(before.export_state()) == 1

    restored = after.order_of(order.id, "key")
    assert restored is not None
    # Wall-clock timelines: an order due to finish while the server was down is finished when it is back.
    assert restored.snapshot(datetime(2026, 1, 2, tzinfo=UTC)).state == "success"
    assert restored.snapshot(created).state == "running"


def test_state_snapshot_never_holds_the_planet_key(tmp_path: Path) -> None:
    store = StateStore(tmp_path, DEFAULT_ACCOUNT_ID, REGION)
    with mock_aws():
        make_resources()
        secrets = boto3.client("secretsmanager")
        planet_key = secrets.create_secret(Name="planet-key", SecretString="PLAK-real")["ARN"]
        store.private_secrets = {planet_key}
        snapshot, _ = store.capture(None)
    assert snapshot.secrets == {"signing-key": "generated"}
