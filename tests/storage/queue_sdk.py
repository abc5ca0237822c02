"""Queue service conformance through the official azure-storage-queue SDK."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ACCOUNT, KEY, case, expect_error, main  # noqa: E402

from azure.storage.queue import QueueServiceClient  # noqa: E402


def service():
    cs = (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT};AccountKey={KEY};QueueEndpoint={os.environ['WEFT_QUEUE_ENDPOINT']};"
    )
    return QueueServiceClient.from_connection_string(cs)


@case
def queues():
    svc = service()
    q = svc.create_queue("orders", metadata={"team": "shop"})
    # the same metadata again: the service answers 204, which the SDK reports
    from azure.core.exceptions import ResourceExistsError

    try:
        svc.create_queue("orders", metadata={"team": "shop"})
        raise AssertionError("create of an existing queue must not report 201")
    except ResourceExistsError as e:
        assert e.status_code == 204, e.status_code
    expect_error(lambda: svc.create_queue("orders", metadata={"team": "other"}), 409, "QueueAlreadyExists")
    for n in ["orders-2", "other"]:
        svc.create_queue(n)
    assert [x.name for x in svc.list_queues(name_starts_with="orders")] == ["orders", "orders-2"]
    pages = [[x.name for x in p] for p in svc.list_queues(results_per_page=2).by_page()]
    assert pages == [["orders", "orders-2"], ["other"]], pages
    listed = {x.name: x.metadata for x in svc.list_queues(include_metadata=True)}
    assert listed["orders"] == {"team": "shop"}, listed
    q.set_queue_metadata({"changed": "yes"})
    props = q.get_queue_properties()
    assert props.metadata == {"changed": "yes"} and props.approximate_message_count == 0
    svc.delete_queue("other")
    expect_error(lambda: svc.get_queue_client("other").get_queue_properties(), 404, "QueueNotFound")
    expect_error(lambda: svc.create_queue("Bad_Name"), 400, "InvalidResourceName")


@case
def messages():
    q = service().create_queue("work")
    sent = [q.send_message(f"job {i}") for i in range(5)]
    assert all(m.pop_receipt for m in sent)
    assert q.get_queue_properties().approximate_message_count == 5
    peeked = q.peek_messages(max_messages=2)
    assert [m.content for m in peeked] == ["job 0", "job 1"]
    assert all(m.dequeue_count == 0 for m in peeked)
    got = list(q.receive_messages(messages_per_page=3, visibility_timeout=60, max_messages=3))
    assert [m.content for m in got] == ["job 0", "job 1", "job 2"], [m.content for m in got]
    assert all(m.dequeue_count == 1 for m in got)
    # received messages are invisible until their timeout
    rest = list(q.receive_messages(messages_per_page=32, visibility_timeout=60))
    assert [m.content for m in rest] == ["job 3", "job 4"]
    assert list(q.receive_messages(visibility_timeout=60)) == []
    for m in got + rest:
        q.delete_message(m)
    assert q.get_queue_properties().approximate_message_count == 0
    expect_error(lambda: q.delete_message(got[0]), 404, "MessageNotFound")
    # an invisible message with a delay, and TTL
    q.send_message("later", visibility_timeout=3600)
    assert q.peek_messages() == []
    q.clear_messages()
    assert q.get_queue_properties().approximate_message_count == 0
    expect_error(lambda: q.send_message("x" * (64 * 1024 + 1)), 400, "MessageTooLarge")
    q.send_message("x" * (64 * 1024))
    assert len(q.peek_messages()[0].content) == 64 * 1024


@case
def bad_input():
    svc = service()
    for bad in ["a", "ab", "-abc", "abc-", "a--b", "Upper", "a_b", "x" * 64]:
        expect_error(lambda: svc.create_queue(bad), 400, "InvalidResourceName")
    assert list(svc.list_queues()) == []
    svc.create_queue("x" * 63)
    q = svc.create_queue("limits")
    q.send_message("one")
    # at most 32 messages per get, and a get's visibility timeout is 1 s to 7 days
    expect_error(lambda: list(q.receive_messages(messages_per_page=33)), 400, "OutOfRangeQueryParameterValue")
    expect_error(lambda: list(q.receive_messages(visibility_timeout=0)), 400, "OutOfRangeQueryParameterValue")
    expect_error(lambda: list(q.receive_messages(visibility_timeout=7 * 24 * 3600 + 1)), 400, "OutOfRangeQueryParameterValue")
    # none of that consumed the message
    got = list(q.receive_messages(messages_per_page=32, visibility_timeout=60))
    assert [m.content for m in got] == ["one"] and got[0].dequeue_count == 1


@case
def time_to_live():
    q = service().create_queue("ttl")
    q.send_message("short", time_to_live=1)
    q.send_message("long")
    # the one-second message expires; the other stays (Azure deletes
    # expired messages: they are never delivered again)
    deadline = time.time() + 10
    left = [m.content for m in q.peek_messages(max_messages=32)]
    while left != ["long"] and time.time() < deadline:
        time.sleep(0.2)
        left = [m.content for m in q.peek_messages(max_messages=32)]
    assert left == ["long"], left
    got = [m.content for m in q.receive_messages(messages_per_page=32, visibility_timeout=60)]
    assert got == ["long"], got
    # time_to_live=-1: never expires
    m = q.send_message("forever", time_to_live=-1)
    assert m.expires_on.year == 9999, m.expires_on


@case
def reappears_after_timeout():
    q = service().create_queue("retry")
    q.send_message("at least once")
    first = next(q.receive_messages(visibility_timeout=1))
    assert first.dequeue_count == 1
    assert list(q.receive_messages(visibility_timeout=1)) == []
    deadline = time.time() + 10
    again = []
    while not again and time.time() < deadline:
        again = list(q.receive_messages(visibility_timeout=30))
        if not again:
            time.sleep(0.2)
    assert again, "a message not deleted before its visibility timeout reappears"
    assert again[0].id == first.id and again[0].dequeue_count == 2
    # the first receipt is stale now
    expect_error(lambda: q.delete_message(first), 404, "PopReceiptMismatch")
    q.delete_message(again[0])


@case
def update_message():
    q = service().create_queue("updates")
    q.send_message("v1")
    m = next(q.receive_messages(visibility_timeout=60))
    updated = q.update_message(m, content="v2", visibility_timeout=0)
    assert updated.pop_receipt != m.pop_receipt
    got = next(q.receive_messages(visibility_timeout=60))
    assert got.content == "v2" and got.dequeue_count == 2
    expect_error(lambda: q.update_message(m, content="v3", visibility_timeout=0), 404, "PopReceiptMismatch")


@case
def durability_write():
    q = service().create_queue("durable")
    q.send_message("acknowledged")


@case
def durability_read():
    q = service().get_queue_client("durable")
    got = [m.content for m in q.receive_messages()]
    assert got == ["acknowledged"], got


@case
def sas_and_acl():
    import datetime

    from azure.storage.queue import (
        AccessPolicy,
        AccountSasPermissions,
        QueueClient,
        QueueSasPermissions,
        ResourceTypes,
        generate_account_sas,
        generate_queue_sas,
    )

    svc = service()
    url = os.environ["WEFT_QUEUE_ENDPOINT"]
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    owner = svc.create_queue("jobs")
    svc.create_queue("other")

    # A producer token (add) puts; it may not take, peek or manage.
    add = generate_queue_sas(ACCOUNT, "jobs", KEY, permission=QueueSasPermissions(add=True), expiry=expiry)
    producer = QueueClient(url, "jobs", credential=add)
    producer.send_message("from the producer")
    expect_error(lambda: next(producer.receive_messages()), 403, "AuthorizationPermissionMismatch")
    expect_error(lambda: producer.peek_messages(), 403, "AuthorizationPermissionMismatch")
    expect_error(lambda: producer.clear_messages(), 403, "AuthorizationPermissionMismatch")
    expect_error(lambda: producer.set_queue_metadata({"k": "v"}), 403, "AuthorizationPermissionMismatch")
    # ...and only on its own queue
    expect_error(lambda: QueueClient(url, "other", credential=add).send_message("x"), 403, None)

    # A consumer token (read, update, process) peeks, takes, updates and deletes.
    rup = generate_queue_sas(
        ACCOUNT, "jobs", KEY, permission=QueueSasPermissions(read=True, update=True, process=True), expiry=expiry
    )
    consumer = QueueClient(url, "jobs", credential=rup)
    assert [m.content for m in consumer.peek_messages()] == ["from the producer"]
    assert consumer.get_queue_properties().approximate_message_count == 1
    m = next(consumer.receive_messages(visibility_timeout=60))
    m = consumer.update_message(m, content="claimed", visibility_timeout=0)
    got = next(consumer.receive_messages(visibility_timeout=60))
    assert got.content == "claimed" and got.dequeue_count == 2, got
    consumer.delete_message(got)
    expect_error(lambda: consumer.send_message("x"), 403, "AuthorizationPermissionMismatch")

    # A tampered token is refused outright.
    tampered = QueueClient(url, "jobs", credential=add.replace("sp=a", "sp=raup"))
    expect_error(lambda: tampered.send_message("x"), 403, "AuthenticationFailed")
    # An expired one too.
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    old = generate_queue_sas(ACCOUNT, "jobs", KEY, permission=QueueSasPermissions(add=True), expiry=past)
    expect_error(lambda: QueueClient(url, "jobs", credential=old).send_message("x"), 403, "AuthenticationFailed")

    # Stored access policies: Set / Get Queue ACL, and tokens that name one.
    owner.set_queue_access_policy(
        signed_identifiers={
            "producers": AccessPolicy(permission=QueueSasPermissions(add=True), expiry=expiry),
            "readers": AccessPolicy(permission=QueueSasPermissions(read=True), expiry=expiry),
        }
    )
    acl = owner.get_queue_access_policy()
    assert set(acl) == {"producers", "readers"}, acl
    assert acl["producers"].permission == "a", acl["producers"].permission
    by_policy = QueueClient(url, "jobs", credential=generate_queue_sas(ACCOUNT, "jobs", KEY, policy_id="producers"))
    by_policy.send_message("through the policy")
    expect_error(lambda: by_policy.peek_messages(), 403, "AuthorizationPermissionMismatch")
    assert [x.content for x in owner.peek_messages()] == ["through the policy"]
    # Removing the policy revokes every token that names it.
    owner.set_queue_access_policy(signed_identifiers={"readers": acl["readers"]})
    expect_error(lambda: by_policy.send_message("x"), 403, "AuthenticationFailed")
    # Stored access policies are managed with the account key only.
    expect_error(lambda: consumer.get_queue_access_policy(), 403, "AuthorizationPermissionMismatch")
    # More than five policies is malformed.
    six = {f"p{i}": AccessPolicy(permission=QueueSasPermissions(read=True), expiry=expiry) for i in range(6)}
    expect_error(lambda: owner.set_queue_access_policy(signed_identifiers=six), 400, None)

    # An account SAS for the queue service lists queues and puts messages.
    acct = generate_account_sas(
        ACCOUNT, KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(list=True, add=True), expiry,
    )
    from azure.storage.queue import QueueServiceClient

    listed = QueueServiceClient(url, credential=acct)
    assert [x.name for x in listed.list_queues()] == ["jobs", "other"]
    QueueClient(url, "other", credential=acct).send_message("by account sas")
    expect_error(lambda: listed.create_queue("nope"), 403, "AuthorizationPermissionMismatch")


@case
def metadata_case():
    svc = service()
    meta = {"Owner": "x", "camelCase": "y", "lower": "z"}
    q = svc.create_queue("cased", metadata=meta)
    assert q.get_queue_properties().metadata == meta, q.get_queue_properties().metadata
    listed = {x.name: x.metadata for x in svc.list_queues(include_metadata=True)}
    assert listed["cased"] == meta, listed
    q.set_queue_metadata({"NewName": "1"})
    assert q.get_queue_properties().metadata == {"NewName": "1"}


if __name__ == "__main__":
    main()
