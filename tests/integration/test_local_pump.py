"""The local stream pump against a serialised moto server: order, batching, partial failures, dead letters."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from engine.local.aws.housekeeping import prune_shard_iterators
from engine.local.aws.server import SerialisedMotoServer
from engine.local.events import order_group_of, order_is_closing
from engine.local.pump import Consumer, StreamPump

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }.items():
            patch.setenv(name, value)
        server = SerialisedMotoServer()
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture
def dynamodb(endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return name


def _pump(endpoint: str, consumers: list[Consumer], **options: Any) -> StreamPump:
    return StreamPump(
        consumers,
        dynamodb=boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION),
        streams=boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=REGION),
        region=REGION,
        **options,
    )


def _put(dynamodb: Any, table: str, *ids: str) -> None:
    for item_id in ids:
        dynamodb.put_item(TableName=table, Item={"id": {"S": item_id}, "blob": {"B": b"\x00\x01"}})


def _ids(event: dict[str, Any]) -> list[str]:
    return [record["dynamodb"]["Keys"]["id"]["S"] for record in event["Records"]]


class Recorder:
    """A fake stream handler: records every batch; fails the records named in ``fail`` (a partial report)."""

    def __init__(self, fail: set[str] | None = None, raise_on: set[str] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self.fail = fail or set()
        self.raise_on = raise_on or set()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        ids = _ids(event)
        self.batches.append(ids)
        self.events.append(event)
        if self.raise_on & set(ids):
            raise RuntimeError("poison record")
        failures = [
            {"itemIdentifier": record["dynamodb"]["SequenceNumber"]}
            for record in event["Records"]
            if record["dynamodb"]["Keys"]["id"]["S"] in self.fail
        ]
        return {"batchItemFailures": failures}

    @property
    def delivered(self) -> list[str]:
        return [item for batch in self.batches for item in batch]


def test_every_consumer_gets_every_record_in_order_with_the_lambda_record_shape(endpoint, dynamodb, table):
    # Given two consumers of one stream (two event source mappings) and three writes
    first, second = Recorder(), Recorder()
    pump = _pump(endpoint, [Consumer("a", table, first), Consumer("b", table, second)])
    _put(dynamodb, table, "1", "2", "3")
    dynamodb.update_item(
        TableName=table,
        Key={"id": {"S": "1"}},
        UpdateExpression="SET st = :s",
        ExpressionAttributeValues={":s": {"S": "filled"}},
    )

    # When the streams are drained
    summary, quiet = pump.drain()

    # Then each consumer saw all four records once, in write order, as Lambda shapes them
    assert quiet
    assert first.delivered == ["1", "2", "3", "1"] == second.delivered
    assert summary.delivered == 8 and summary.failures == 0 and summary.dead_letters == 0
    records = first.events[0]["Records"]
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert {record["eventSourceARN"] for record in records} == {stream_arn}
    assert [record["eventName"] for record in records] == ["INSERT", "INSERT", "INSERT", "MODIFY"]
    sequence = [int(record["dynamodb"]["SequenceNumber"]) for record in records]
    assert sequence == sorted(sequence)
    update = records[3]
    assert update["eventSource"] == "aws:dynamodb" and update["awsRegion"] == REGION
    assert update["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert update["dynamodb"]["NewImage"]["st"] == {"S": "filled"}
    assert "st" not in update["dynamodb"]["OldImage"]
    assert update["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}  # base64 text, as Lambda delivers binary
    assert isinstance(update["dynamodb"]["ApproximateCreationDateTime"], int)
    assert isinstance(update["dynamodb"]["SizeBytes"], int)


def test_batches_hold_at_most_the_batch_size(endpoint, dynamodb, table):
    # Given five records and a batch size of two
    recorder = Recorder()
    pump = _pump(endpoint, [Consumer("a", table, recorder)], batch_size=2)
    _put(dynamodb, table, "1", "2", "3", "4", "5")

    # When drained
    pump.drain()

    # Then they arrive in order in batches of two, two and one
    assert recorder.batches == [["1", "2"], ["3", "4"], ["5"]]


def test_a_reported_failure_is_redelivered_with_the_rest_then_dead_lettered(endpoint, dynamodb, table):
    # Given a consumer that always reports record "2" failed, and a limit of 2 retries
    recorder = Recorder(fail={"2"})
    pump = _pump(endpoint, [Consumer("fn", table, recorder)], max_retries=2)
    _put(dynamodb, table, "1", "2", "3")

    # When drained
    summary, quiet = pump.drain()

    # Then "1" is acknowledged once; "2" and "3" come back together on each retry
    assert recorder.batches == [["1", "2", "3"], ["2", "3"], ["2", "3"], ["3"]]
    # And after the first attempt plus two retries "2" is a dead letter and the consumer moved on
    assert quiet
    assert summary.failures == 3 and summary.dead_letters == 1 and summary.delivered == 2
    (letter,) = pump.dead_letters
    assert letter.consumer == "fn" and letter.table == table
    assert letter.keys == {"id": {"S": "2"}} and letter.attempts == 3
    assert letter.event_name == "INSERT"


def test_a_transient_failure_is_redelivered_without_a_dead_letter(endpoint, dynamodb, table):
    # Given a consumer that fails record "1" once only
    recorder = Recorder(fail={"1"})
    calls = {"n": 0}

    def flaky(event: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] > 1:
            recorder.fail = set()
        return recorder(event)

    pump = _pump(endpoint, [Consumer("fn", table, flaky)])
    _put(dynamodb, table, "1", "2")

    # When drained
    summary, _ = pump.drain()

    # Then both records are delivered again and acknowledged; nothing is dead-lettered
    assert recorder.batches == [["1", "2"], ["1", "2"]]
    assert summary.delivered == 2 and summary.failures == 1 and pump.dead_letters == []


def test_an_exception_fails_the_whole_batch_and_bisects_to_the_poison_record(endpoint, dynamodb, table):
    # Given a handler that raises whenever record "3" is in its batch
    recorder = Recorder(raise_on={"3"})
    pump = _pump(endpoint, [Consumer("fn", table, recorder)], max_retries=1)
    _put(dynamodb, table, "1", "2", "3", "4")

    # When drained
    summary, quiet = pump.drain()

    # Then the batch is halved until "3" fails alone, its neighbours are delivered, and only "3" is dead
    assert quiet
    assert recorder.batches[:3] == [["1", "2", "3", "4"], ["1", "2"], ["3", "4"]]
    assert [letter.keys["id"]["S"] for letter in pump.dead_letters] == ["3"]
    assert "RuntimeError: poison record" in pump.dead_letters[0].error
    assert recorder.batches[-1] == ["4"]
    assert summary.dead_letters == 1


def test_an_invalid_failure_report_fails_the_whole_batch(endpoint, dynamodb, table):
    # Given a handler that reports an identifier that is not in its batch
    batches: list[list[str]] = []

    def wrong(event: dict[str, Any]) -> dict[str, Any]:
        batches.append(_ids(event))
        return {"batchItemFailures": [{"itemIdentifier": "not-a-sequence-number"}]}

    pump = _pump(endpoint, [Consumer("fn", table, wrong)], max_retries=0)
    _put(dynamodb, table, "1", "2")

    # When drained
    pump.drain()

    # Then it is treated as a whole-batch failure: bisected, and each record given up on alone
    assert batches == [["1", "2"], ["1"], ["2"]]
    assert [letter.keys["id"]["S"] for letter in pump.dead_letters] == ["1", "2"]


def test_drain_follows_records_written_by_consumers_and_stops_when_quiet(endpoint, dynamodb, table):
    # Given a consumer that writes a follow-up record for each record it sees, up to depth 3
    seen: list[str] = []

    def chain(event: dict[str, Any]) -> None:
        for item_id in _ids(event):
            seen.append(item_id)
            if len(item_id) < 3:
                _put(dynamodb, table, item_id + "x")

    pump = _pump(endpoint, [Consumer("fn", table, chain)])
    _put(dynamodb, table, "a")

    # When drained
    summary, quiet = pump.drain()

    # Then the whole chain was delivered before drain returned, and a second drain finds nothing
    assert quiet and seen == ["a", "ax", "axx"]
    assert summary.delivered == 3
    again, quiet_again = pump.drain()
    assert quiet_again and again.sent == 0 and seen == ["a", "ax", "axx"]


def test_drain_gives_up_after_max_passes_when_never_quiet(endpoint, dynamodb, table):
    # Given a consumer that always writes a new record
    counter = {"n": 0}

    def endless(event: dict[str, Any]) -> None:
        counter["n"] += 1
        _put(dynamodb, table, f"n{counter['n']}")

    pump = _pump(endpoint, [Consumer("fn", table, endless)])
    _put(dynamodb, table, "start")

    # When drained with a pass limit
    summary, quiet = pump.drain(max_passes=5)

    # Then it stops and says the streams were not quiet
    assert not quiet and summary.delivered == 5


def test_the_background_pump_delivers_without_a_drain(endpoint, dynamodb, table):
    # Given a running pump
    import threading

    delivered = threading.Event()

    def handler(event: dict[str, Any]) -> None:
        if "late" in _ids(event):
            delivered.set()

    pump = _pump(endpoint, [Consumer("fn", table, handler)], poll_seconds=0.05)
    pump.start()
    try:
        # When a record is written
        _put(dynamodb, table, "late")
        # Then the pump thread delivers it
        assert delivered.wait(10)
    finally:
        pump.stop()


def test_a_pruned_iterator_is_replaced_without_losing_or_repeating_records(endpoint, dynamodb, table):
    # Given a consumer that has read one record, and moto's iterators pruned to none
    recorder = Recorder()
    pump = _pump(endpoint, [Consumer("fn", table, recorder)])
    _put(dynamodb, table, "1")
    pump.drain()
    assert prune_shard_iterators(keep=0, threshold=0) > 0

    # When more records arrive and the pump runs again
    _put(dynamodb, table, "2")
    pump.drain()

    # Then the consumer continues right after what it had read
    assert recorder.delivered == ["1", "2"]


def test_records_written_after_a_cancelled_transaction_are_still_delivered(endpoint, dynamodb, table):
    # Given a consumer that has already read the stream once
    recorder = Recorder()
    pump = _pump(endpoint, [Consumer("a", table, recorder)])
    _put(dynamodb, table, "1")
    pump.drain()
    # And a transaction on the table that is cancelled (moto rolls it back by swapping in a table copy)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"id": {"S": "1"}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                }
            ]
        )

    # When the table is written again and the stream drained
    _put(dynamodb, table, "2")
    pump.drain()

    # Then the new record still reaches the consumer (a pool-full open_group must not silence the streams)
    assert recorder.delivered == ["1", "2"]


def test_a_consumer_in_its_own_lane_is_not_held_up_by_a_long_batch_of_another(endpoint, dynamodb, table):
    # Given a slow consumer (its batch blocks until released) and a consumer in a lane of its own
    released, fast_seen, slow_inside = threading.Event(), threading.Event(), threading.Event()
    slow_batches: list[list[str]] = []
    fast = Recorder()

    def slow(event: dict[str, Any]) -> dict[str, Any]:
        slow_batches.append(_ids(event))
        slow_inside.set()
        released.wait(60)
        return {"batchItemFailures": []}

    def quick(event: dict[str, Any]) -> dict[str, Any]:
        answer = fast(event)
        fast_seen.set()
        return answer

    pump = _pump(
        endpoint,
        [Consumer("slow", table, slow), Consumer("fast", table, quick, lane="send")],
        poll_seconds=0.05,
    )
    pump.start()
    try:
        # When a record arrives while the slow consumer is still inside its batch
        _put(dynamodb, table, "1")
        pump.notify()
        assert slow_inside.wait(60), "the slow consumer never got its batch"
        assert fast_seen.wait(60), "the fast lane waited for the slow batch"
        # Then the fast consumer got it without waiting for the slow batch to end
        assert fast.delivered == ["1"] and not released.is_set()
    finally:
        released.set()
        pump.stop()
    # And the slow consumer got the record too, and both acknowledged it
    assert slow_batches == [["1"]]
    positions = pump.positions()
    assert positions[f"slow|{table}"] == positions[f"fast|{table}"]


# ---------------------------------------------------------------------- fair delivery (the orders stream)


class Ticks:
    """A clock that moves one unit each time it is read: every delivery costs its key one unit."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def _fair_pump(endpoint: str, consumers: list[Consumer], **options: Any) -> StreamPump:
    return _pump(endpoint, consumers, clock=options.pop("clock", Ticks()), **options)


def _put_orders(dynamodb: Any, table: str, *orders: tuple[str, str]) -> None:
    for order_id, group in orders:
        dynamodb.put_item(TableName=table, Item={"id": {"S": order_id}, "group_id": {"S": group}})


def test_fair_delivery_sends_a_new_groups_first_record_before_the_rest_of_an_earlier_group(
    endpoint, dynamodb, table
):
    # Given the legs of group A written before the first leg of group B, and a consumer with a fair key
    recorder = Recorder()
    pump = _fair_pump(
        endpoint, [Consumer("executor", table, recorder, fair_key=order_group_of, batch_size=1)]
    )
    _put_orders(dynamodb, table, ("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B"))

    # When drained
    summary, quiet = pump.drain()

    # Then each invocation holds one record; B's first record overtakes A's remaining ones, after which B
    # counts as served as much as A and the older record goes first; each group's records keep their order
    assert quiet and summary.delivered == 5
    assert recorder.batches == [["a1"], ["b1"], ["a2"], ["a3"], ["b2"]]
    # And the position is the newest record (b2), although a3 was delivered after it
    newest = max(int(e["Records"][0]["dynamodb"]["SequenceNumber"]) for e in recorder.events)
    assert int(pump.positions()[StreamPump.key_of(pump.consumers[0])]) == newest


def test_fair_delivery_acknowledges_only_up_to_a_failing_record_and_a_restart_replays_the_rest(
    endpoint, dynamodb, table
):
    # Given a consumer that fails a2 every time, with many retries left
    recorder = Recorder(fail={"a2"})
    consumer = Consumer("executor", table, recorder, fair_key=order_group_of, batch_size=1)
    pump = _fair_pump(endpoint, [consumer], max_retries=50, batch_size=4)
    _put_orders(dynamodb, table, ("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"))

    # When one pass runs (a batch's worth of invocations, one record each)
    pump.run_pass()

    # Then B went ahead while a2 failed, and a3 waits behind a2 (order within a group)
    assert recorder.delivered == ["a1", "b1", "a2", "a2"]
    # And the position stops before a2: b1, done out of order, is not acknowledged yet
    a1 = recorder.events[0]["Records"][0]["dynamodb"]["SequenceNumber"]
    assert pump.positions() == {StreamPump.key_of(consumer): a1}

    # When a pump restarts from that position with a consumer that no longer fails
    again = Recorder()
    restarted = _fair_pump(
        endpoint,
        [Consumer("executor", table, again, fair_key=order_group_of, batch_size=1)],
        positions=pump.positions(),
    )
    restarted.drain()

    # Then everything after a1 is delivered again (b1 included: consumers are idempotent) and nothing before
    assert sorted(again.delivered) == ["a2", "a3", "b1"]
    assert again.delivered.index("a2") < again.delivered.index("a3")


def test_fair_delivery_dead_letters_a_record_that_keeps_failing_and_moves_its_group_on(
    endpoint, dynamodb, table
):
    # Given a consumer that raises on a1, with two retries
    recorder = Recorder(raise_on={"a1"})
    consumer = Consumer("executor", table, recorder, fair_key=order_group_of, batch_size=1)
    pump = _fair_pump(endpoint, [consumer], max_retries=2)
    _put_orders(dynamodb, table, ("a1", "A"), ("a2", "A"), ("b1", "B"))

    # When drained
    summary, quiet = pump.drain()

    # Then a1 was tried three times, then dead-lettered, and a2 followed it; B was not held up
    assert quiet
    assert recorder.delivered.count("a1") == 3
    assert recorder.delivered.index("b1") < recorder.delivered.index("a2")
    assert recorder.delivered[-1] == "a2"
    (letter,) = pump.dead_letters
    assert letter.keys == {"id": {"S": "a1"}} and letter.attempts == 3
    assert summary.dead_letters == 1
    # And every record is acknowledged
    last = max(int(e["Records"][0]["dynamodb"]["SequenceNumber"]) for e in recorder.events)
    assert int(pump.positions()[StreamPump.key_of(consumer)]) == last


def test_fair_batches_let_a_new_group_in_ahead_of_a_long_backlog_of_another(endpoint, dynamodb, table):
    # Given six records of group A written before one of group B, and batches of three (position_update)
    recorder = Recorder()
    pump = _fair_pump(
        endpoint, [Consumer("positions", table, recorder, fair_key=order_group_of, batch_size=3)]
    )
    _put_orders(dynamodb, table, *((f"a{n}", "A") for n in range(1, 7)), ("b1", "B"))

    # When drained
    pump.drain()

    # Then B's record rides in the second batch, ahead of A's rest; each group's records keep their order
    assert recorder.batches == [["a1", "a2", "a3"], ["b1", "a4", "a5"], ["a6"]]


def test_a_failure_inside_a_fair_batch_redelivers_that_record_and_the_ones_after_it(
    endpoint, dynamodb, table
):
    # Given a consumer that reports a2 failed on its first delivery only
    class FailOnce(Recorder):
        def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
            self.fail = {"a2"} if not self.batches else set()
            return super().__call__(event)

    recorder = FailOnce()
    consumer = Consumer("positions", table, recorder, fair_key=order_group_of, batch_size=3)
    pump = _fair_pump(endpoint, [consumer])
    _put_orders(dynamodb, table, ("a1", "A"), ("a2", "A"), ("b1", "B"))

    # When drained
    summary, quiet = pump.drain()

    # Then, as Lambda does, the records from the failed one on come again (B first: it was served less),
    # and nothing is lost
    assert quiet and summary.failures == 1 and not pump.dead_letters
    assert recorder.batches == [["a1", "a2", "b1"], ["b1", "a2"]]
    newest = max(int(e["Records"][-1]["dynamodb"]["SequenceNumber"]) for e in recorder.events)
    assert int(pump.positions()[StreamPump.key_of(consumer)]) == newest


def test_fair_service_is_counted_in_time_so_cheap_records_do_not_cost_their_group_turns(
    endpoint, dynamodb, table
):
    # Given group A with a send then two records that ask nothing (answered at once), and group B with two
    # sends; a send takes 10 units of time
    clock = Ticks()

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        if _ids(event)[0] in {"a1", "b1", "b2", "a4"}:
            clock.now += 10
        return recorder(event)

    recorder = Recorder()
    consumer = Consumer("executor", table, deliver, fair_key=order_group_of, batch_size=1)
    pump = _fair_pump(endpoint, [consumer], clock=clock)
    _put_orders(dynamodb, table, ("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b2", "B"))

    # When drained
    pump.drain()

    # Then A's quick records and its next send come before B's second send: they cost A next to nothing
    assert recorder.delivered == ["a1", "b1", "a2", "a3", "a4", "b2"]


def test_a_cancel_or_a_close_goes_before_the_other_groups_records(endpoint, dynamodb, table):
    # Given three groups' resting legs to send, then group C asked to cancel and its close order
    recorder = Recorder()
    consumer = Consumer(
        "executor", table, recorder, fair_key=order_group_of, batch_size=1, urgent=order_is_closing
    )
    pump = _fair_pump(endpoint, [consumer])
    _put_orders(dynamodb, table, ("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("a3", "A"))
    dynamodb.put_item(
        TableName=table,
        Item={"id": {"S": "c1"}, "group_id": {"S": "C"}, "cancel_requested": {"BOOL": True}},
    )
    _put_orders(dynamodb, table, ("C-close-1", "C"))

    # When drained
    pump.drain()

    # Then C's cancel and close go first, the other groups' legs after them, in turns
    assert recorder.delivered[:2] == ["c1", "C-close-1"]
    assert sorted(recorder.delivered[2:]) == ["a1", "a2", "a3", "b1", "b2"]
