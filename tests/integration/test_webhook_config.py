"""Given a warm webhook Lambda (one process), when an operator edits a config document in SSM, then the
next invocation behaves by the new version (pool size, a per-market DCA grid, pause)."""

from __future__ import annotations

from decimal import Decimal

from engine.app.context import Stores
from tests.support.scenario import set_document
from tests.support.webhook import WebhookClient, alert, minute_times

D = Decimal


def test_pool_size_edit_applies_to_the_next_signal(client: WebhookClient, st: Stores) -> None:
    set_document("pool", max_open_groups=1)
    assert client.post(alert(symbol="BTCUSDT"))[1]["outcome"] == "opened"
    assert client.post(alert(symbol="ETHUSDT", entry_price="2500"))[1]["outcome"] == "queued"
    # When the pool grows to 2, then the next new key opens at once
    set_document("pool", max_open_groups=2)
    _, body = client.post(alert(symbol="SOLUSDT", entry_price="150"))
    assert body["outcome"] == "opened"
    assert st.pool.count() == 2


def test_a_per_market_dca_document_shapes_the_next_pyramid(client: WebhookClient, st: Stores) -> None:
    t0, t1 = minute_times(2)
    _, opened = client.post(alert(timeframe="1", entry_price="50000", timestamp=t0))
    # When dca/binance/BTCUSDT/1 is written with two 50 % levels and 200 USD
    set_document(
        "dca/binance/BTCUSDT/1",
        levels=[
            {"gap_percent": 0, "weight_percent": 50, "tp_percent": 1},
            {"gap_percent": -1, "weight_percent": 50, "tp_percent": 2},
        ],
    )
    _, body = client.post(alert(timeframe="1", entry_price="50000", timestamp=t1))
    # Then the first pyramid kept the default five legs and the new one has the document's two
    assert body["outcome"] == "pyramided"
    orders = st.orders.list_for_group(opened["group_id"])
    first = [o for o in orders if o.pyramid == 1]
    second = sorted((o for o in orders if o.pyramid == 2), key=lambda o: o.leg or 0)
    assert len(first) == 5
    assert [(o.price, o.amount, o.tp_percent) for o in second] == [
        (D("50000.00"), D("0.00200"), D("1")),
        (D("49500.00"), D("0.00202"), D("2")),
    ]


def test_a_per_market_dca_document_is_recorded_on_a_new_group(client: WebhookClient, st: Stores) -> None:
    set_document("dca/binance/BTCUSDT/60", capital_usd=100, tp_mode="aggregate", tp_aggregate_percent=2)
    _, body = client.post(alert())
    group = st.groups.get(body["group_id"])
    assert group is not None
    assert group.config_versions["dca/binance/BTCUSDT/60"] == 1
    assert "dca/default" not in group.config_versions
    assert (group.tp_mode.value, group.tp_aggregate_percent) == ("aggregate", D("2"))
    assert group.pyramids[0].capital_usd == D("100")


def test_pause_and_resume_apply_to_the_next_signal(client: WebhookClient, st: Stores) -> None:
    set_document("engine", paused=True)
    assert client.post(alert(symbol="BTCUSDT"))[1] == {"outcome": "rejected", "reason": "engine paused"}
    set_document("engine", paused=False)
    assert client.post(alert(symbol="ETHUSDT", entry_price="2500"))[1]["outcome"] == "opened"


def test_an_invalid_dca_document_refuses_new_entries_on_that_market(
    client: WebhookClient, st: Stores
) -> None:
    # Given a per-market document whose only version is invalid (weights sum to 90)
    set_document("dca/binance/BTCUSDT/60", levels=[{"gap_percent": 0, "weight_percent": 90, "tp_percent": 1}])
    _, body = client.post(alert())
    assert body["outcome"] == "rejected"
    assert "dca/binance/BTCUSDT/60" in body["reason"]
    # And another market still trades
    assert client.post(alert(symbol="ETHUSDT", entry_price="2500"))[1]["outcome"] == "opened"
