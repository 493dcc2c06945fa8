"""The TradingView alert message to paste into an alert's "Message" box (JSON with TradingView's
placeholders; ``{{...}}`` are filled in by TradingView when the alert fires)."""

from __future__ import annotations

import copy
import json
from typing import Any

ALERT_TEMPLATE: dict[str, Any] = {
    "secret": "<your webhook secret>",
    "source": "tradingview",
    "timestamp": "{{timenow}}",
    "tv": {
        "exchange": "{{exchange}}",
        "symbol": "{{ticker}}",
        "timeframe": "{{interval}}",
        "action": "{{strategy.order.action}}",
        "market_position": "{{strategy.market_position}}",
        "market_position_size": "{{strategy.market_position_size}}",
        "prev_market_position": "{{strategy.prev_market_position}}",
        "prev_market_position_size": "{{strategy.prev_market_position_size}}",
        "entry_price": "{{strategy.order.price}}",
        "close_price": "{{close}}",
        "order_size": "{{strategy.order.contracts}}",
    },
    "strategy_info": {
        "trade_id": "{{strategy.order.id}}",
        "alert_name": "{{alert_name}}",
        "alert_message": "{{strategy.order.comment}}",
    },
    "execution_intent": {
        "type": "signal",
        "side": "{{strategy.order.action}}",
        "position_size_type": "contracts",
        "precision_mode": "auto",
    },
    "risk": {"stop_loss": None, "take_profit": None, "max_slippage_percent": 1.0},
}


def alert_message(secret: str) -> str:
    """The alert JSON with ``secret`` filled in, indented for reading."""
    message = copy.deepcopy(ALERT_TEMPLATE)
    message["secret"] = secret
    return json.dumps(message, indent=2)
