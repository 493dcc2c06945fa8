"""Given the same alert delivered more than once (resends, concurrent deliveries, a retry after a failure),
when the webhook Lambda handles them, then the work is done once and every delivery gets the same answer."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from engine.app.context import stores
from engine.app.intake import webhook
from engine.store import PoolStore
from engine.store.tables import IdempotencyModel, table_name
from tests.support.webhook import alert, prepare_webhook, same_candle_times


def _idempotency_ids() -> list[str]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = client.scan(TableName=table_name(IdempotencyModel))["Items"]
    return [item["id"]["S"] for item in items]


def _assert_one_group_with_one_order_per_leg(group_id: str) -> None:
    st = stores()
    groups = st.groups.list_open()
    assert [group.id for group in groups] == [group_id]
    orders = st.orders.list_for_group(group_id)
    assert sorted(order.id for order in orders) == [f"{group_id}-p1-l{n}" for n in range(1, 6)]
    assert st.pool.count() == 1


def test_the_same_webhook_four_times_opens_one_group(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = prepare_webhook(monkeypatch)
    event = client.event(alert())
    # When the identical request is delivered four times
    answers = [client.invoke(event) for _ in range(4)]
    # Then all four get the first answer and the work exists once
    assert answers[0][0] == 202 and answers[0][1]["outcome"] == "opened"
    assert answers == [answers[0]] * 4
    _assert_one_group_with_one_order_per_leg(answers[0][1]["group_id"])
    assert len(stores().signals.list_recent()) == 1
    assert len(_idempotency_ids()) == 1


def test_a_retry_after_the_idempotency_record_is_gone_finds_its_own_group(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a delivery that opened a group, and its idempotency record lost (crash before it was saved)
    client = prepare_webhook(monkeypatch)
    event = client.event(alert())
    first = client.invoke(event)
    for record_id in _idempotency_ids():
        dynamodb.delete_item(TableName=table_name(IdempotencyModel), Key={"id": {"S": record_id}})
    # When the same alert is delivered again
    second = client.invoke(event)
    # Then it recognises the group it created (derived id) and answers "opened" again, doing nothing twice
    assert second[0] == 202
    assert (second[1]["outcome"], second[1]["group_id"]) == ("opened", first[1]["group_id"])
    _assert_one_group_with_one_order_per_leg(first[1]["group_id"])


def test_a_store_failure_answers_5xx_and_the_resend_completes_the_work(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the webhook failing once right after the opening transaction committed (group, legs and the
    # signal's event written together)
    client = prepare_webhook(monkeypatch)
    original = PoolStore.open_group
    calls = {"n": 0}

    def failing_once(self: PoolStore, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("connection lost after the commit")
        return result

    monkeypatch.setattr(PoolStore, "open_group", failing_once)
    event = client.event(alert())
    # When the alert is delivered, then the answer asks for a resend (5xx) and no idempotency record stays
    status, body = client.invoke(event)
    assert (status, body["error"]) == (500, "internal_error")
    assert _idempotency_ids() == []
    # When it is resent, then it completes: one group, its legs once, the audit recorded
    status, body = client.invoke(event)
    assert (status, body["outcome"]) == (202, "opened")
    _assert_one_group_with_one_order_per_leg(body["group_id"])
    assert [record.outcome for record in stores().signals.list_recent()] == ["opened"]


def test_four_concurrent_deliveries_open_one_group(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the serialised moto server and a generous wait for the in-progress delivery
    monkeypatch.setattr(webhook, "IN_PROGRESS_WAIT_SECONDS", 20.0)
    client = prepare_webhook(monkeypatch)
    event = client.event(alert())
    barrier = threading.Barrier(4)
    answers: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        try:
            answer = client.invoke(event)
        except BaseException as exc:  # surfaced below
            with lock:
                errors.append(exc)
            return
        with lock:
            answers.append(answer)

    # When four deliveries of the same request run at once
    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then every delivery gets the same 202 answer and one group exists
    assert errors == []
    assert len(answers) == 4
    assert answers[0][0] == 202 and answers[0][1]["outcome"] == "opened"
    assert all(answer == answers[0] for answer in answers)
    _assert_one_group_with_one_order_per_leg(answers[0][1]["group_id"])


def test_four_concurrent_different_signals_for_one_key_open_one_group(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given four different alerts for the same key in the same candle, delivered at once
    client = prepare_webhook(monkeypatch)
    (moment,) = same_candle_times(1, 60)
    events = [client.event(alert(trade_id=f"t{n}", timestamp=moment)) for n in range(4)]
    barrier = threading.Barrier(4)
    replies: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def deliver(event: dict[str, Any]) -> None:
        barrier.wait()
        reply = client.invoke(event)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then exactly one opened the group; the others are duplicates for that candle
    assert [status for status, _ in replies] == [202] * 4
    answers = [body for _, body in replies]
    assert sorted(answer["outcome"] for answer in answers) == ["ignored"] * 3 + ["opened"]
    opened = next(answer for answer in answers if answer["outcome"] == "opened")
    _assert_one_group_with_one_order_per_leg(opened["group_id"])
