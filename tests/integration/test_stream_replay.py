"""A stream handler that fails in the middle of a batch: partial batch response, redelivery, replay.

Lambda with ``ReportBatchItemFailures`` on a DynamoDB stream retries from the lowest sequence number a
handler reports failed, so records after it are processed again; a batch may also be delivered twice
(at least once). Here the 3rd record of a batch of the faulty group's five new legs raises once (the
service call behind the handler is patched), the response must name exactly that record, the batch is
redelivered from it, then replayed whole — and the group still ends exactly where the clean one ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.faults import CLEAN, FAULTY, World, make_world, run_lifecycle
from tests.support.streams import deliver, failed_items

#: (handler, the service call it makes per record, as a dotted path from the handler's module).
PATCHED = [("executor", "process_order"), ("position_update", "OrderChanges.apply")]


class Crash(RuntimeError):
    """What the patched service raises once."""


def failing_on_call(n: int, real: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    """``real``, except that call number ``n`` raises :class:`Crash` (only the first time round)."""

    def service(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise Crash("lost the connection to DynamoDB mid-batch")
        return real(*args, **kwargs)

    return service


@pytest.mark.parametrize(("handler_name", "service_name"), PATCHED, ids=[h for h, _ in PATCHED])
def test_a_record_failing_mid_batch_is_reported_redelivered_and_replays_to_the_same_state(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, handler_name: str, service_name: str
) -> None:
    world = make_world(monkeypatch)

    def third_record_fails(w: World) -> None:
        # Given the batch with the faulty group's five new legs, held back from the normal flow
        w.hold.add(w.faulty_group)
        w.drain()
        w.hold.clear()
        records = w.held.pop("orders")
        assert len(records) == 5
        batch = {"Records": records}
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        handler = getattr(w, handler_name)
        other = w.position_update if handler is w.executor else w.executor
        # And the handler's service raises on the batch's 3rd record, once
        calls: list[int] = []
        *path, name = service_name.split(".")
        owner = handler
        for part in path:
            owner = getattr(owner, part)
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, failing_on_call(3, real, calls))

        # When both consumers of the orders stream get the batch
        response = deliver(handler, batch)
        assert failed_items(deliver(other, batch)) == []

        # Then the partial batch response names exactly the 3rd record
        assert failed_items(response) == [sequence[2]]
        assert len(calls) == 5  # the records after it were processed too
        # When Lambda redelivers from the failed record on, then every record succeeds
        assert failed_items(deliver(handler, {"Records": records[2:]})) == []
        # And a replay of the whole batch to both consumers changes nothing and fails nothing
        before = w.fingerprint()
        assert failed_items(deliver(handler, batch)) == []
        assert failed_items(deliver(other, batch)) == []
        assert w.fingerprint() == before

    # And the group ends where the clean one ends, with every order sent once
    run_lifecycle(world, {"open": third_record_fails})
    faulty, clean = world.snapshot(FAULTY), world.snapshot(CLEAN)
    assert clean["status"] == "closed"
    assert faulty == clean
    world.assert_no_duplicates()
    assert world.report().drift == []
    assert world.stores.pool.count() == 0


def test_a_batch_refreshes_each_group_once_and_a_failed_refresh_is_tried_again(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.app.positions import batch as batch_module

    world = make_world(monkeypatch)
    refreshed: list[str] = []
    real = batch_module.refresh_group

    def counted(ctx: Any, group_id: str, now: Any, **kwargs: Any) -> Any:
        refreshed.append(group_id)
        if len(refreshed) == 1:
            raise Crash("lost the connection to DynamoDB mid-batch")
        return real(ctx, group_id, now, **kwargs)

    def refreshes_once(w: World) -> None:
        # Given the faulty group's five new legs held back, sent to the executor (five more records)
        w.hold.add(w.faulty_group)
        w.drain()
        records = w.held.pop("orders")
        assert failed_items(deliver(w.executor, {"Records": records})) == []
        w.drain()
        w.hold.clear()
        records += w.held.pop("orders")
        assert len(records) == 10
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        monkeypatch.setattr(batch_module, "refresh_group", counted)

        # When position_update gets the ten records of the one group, and its first refresh fails
        response = deliver(w.position_update, {"Records": records})

        # Then the first record is reported failed, the second refreshes the group, the other eight do not
        assert failed_items(response) == [sequence[0]]
        assert refreshed == [w.faulty_group, w.faulty_group]
        # And Lambda's redelivery of the batch succeeds whole (the lifecycle below ends as the clean group's)
        monkeypatch.setattr(batch_module, "refresh_group", real)
        assert failed_items(deliver(w.position_update, {"Records": records})) == []

    run_lifecycle(world, {"open": refreshes_once})
    faulty, clean = world.snapshot(FAULTY), world.snapshot(CLEAN)
    assert faulty == clean
    world.assert_no_duplicates()
