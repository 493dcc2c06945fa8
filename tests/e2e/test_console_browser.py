"""The operator console in a real browser (DESIGN §6): `python -m engine.local` driven by headless Chromium.

Given a private runtime, when an alert opens a group, then the page shows it (short id, BTC/USDT, its legs);
when the operator clicks its Close button and confirms, then the page shows the answer, the group leaves
the open list, its detail says ``closed`` and the pool has its slot back. The browser's console must stay
free of errors throughout. A screenshot is saved to ``tests/e2e/screenshots/console.png``; with 50 open
groups the page's render time is measured and printed (not asserted).

Also over plain HTTP: after one winning and one losing group close, ``GET /analytics?period=all`` reports
2 trades, ``win_rate`` 50 and the profit factor win ÷ |loss|.

Chromium and chromedriver are Debian's (``make test`` installs them through apt when missing); selenium
is given the driver's path, so nothing is downloaded.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.conftest import StartStack
from tests.e2e.stack import LocalStack, entry_signal, exit_signal

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

SCREENSHOT = Path(__file__).parent / "screenshots" / "console.png"
T = TypeVar("T")
PRICES = {"BTC/USDT": 60000, "ETH/USDT": 3000, "SOL/USDT": 150}


def _binary(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


CHROMIUM = _binary("chromium", "chromium-browser")
CHROMEDRIVER = _binary("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium + chromium-driver (make test installs them)",
)


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 15, what: str = "") -> T:
    """Poll ``read`` until ``done``; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
            if done(value):
                return value
        except Exception as error:  # a node replaced by the page's refresh between find and read
            value = error  # type: ignore[assignment]
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}; last: {value!r}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def console_stack(start_stack: StartStack) -> LocalStack:
    stack = start_stack("console")
    stack.edit_config("pool", {"max_open_groups": 60})
    stack.edit_config("engine", {"max_open_per_symbol": 10, "max_total_exposure_usd": 1_000_000})
    stack.prices(PRICES)
    return stack


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,1100", "--hide-scrollbars", "--no-first-run"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver) -> Iterator[WebDriver]:
    """The browser for one test; afterwards it leaves the console (no polling into the next test)."""
    yield browser
    browser.get("about:blank")


def console_errors(driver: WebDriver) -> list[str]:
    """Browser console messages at level SEVERE since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def click(driver: WebDriver, css: str) -> None:
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, css).click() or True, bool, what=f"click {css}")


def test_a_group_is_seen_closed_from_the_page_and_its_slot_freed(
    console_stack: LocalStack, page: WebDriver
) -> None:
    stack, browser = console_stack, page
    # Given an open BTC/USDT group with its first leg filled (and two more groups for company)
    status, reply = stack.signal(entry_signal(stack.secret, "BTCUSDT", PRICES["BTC/USDT"]))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    for symbol in ("ETHUSDT", "SOLUSDT"):
        stack.signal(entry_signal(stack.secret, symbol, PRICES[symbol.replace("USDT", "/USDT")]))
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["filled_legs"] >= 1)
    stack.prices({"BTC/USDT": 60300, "ETH/USDT": 2985})
    stack.tick()
    legs = f"{detail['group']['filled_legs']}/{detail['group']['total_legs']}"
    pool_before = stack.pool()

    # When the console is opened
    browser.get(stack.url + "/")
    row = f'tr[data-group="{group_id}"]'
    wait_for(
        lambda: text_of(browser, row), lambda t: group_id[:8] in t and "BTC/USDT" in t, what="the group row"
    )
    assert legs in text_of(browser, row)
    assert f"{pool_before['open']} / {pool_before['max_open_groups']}" in text_of(browser, "#pool")

    # Then its detail shows the legs and take-profits
    click(browser, f'{row} button[data-open="{group_id}"]')
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#detail tr[data-order]")),
             lambda n: n >= detail["group"]["total_legs"], what="the detail's orders")  # fmt: skip

    # When the operator clicks Close and confirms
    click(browser, f'{row} button[data-action="close"]')
    wait_for(lambda: browser.find_element(By.ID, "confirm").get_attribute("open"), lambda v: v is not None,
             what="the confirmation")  # fmt: skip
    assert group_id[:8] in text_of(browser, "#confirm-text")
    click(browser, "#confirm-ok")
    wait_for(lambda: text_of(browser, "#message"), lambda t: "done" in t, what="the answer of close")

    # Then, once its close order fills, the page shows it closed and the slot freed
    stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, row), lambda rows: not rows, what="row gone")
    wait_for(lambda: text_of(browser, "#detail"), lambda t: "closed" in t, what="detail says closed")
    freed = f"{pool_before['open'] - 1} / {pool_before['max_open_groups']}"
    wait_for(lambda: text_of(browser, "#pool"), lambda t: freed in t, what="the slot freed")
    wait_for(lambda: text_of(browser, "#analytics-figures"), lambda t: "trades" in t, what="analytics shown")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1440, 2100)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SCREENSHOT))
    browser.set_window_size(1440, 1100)
    assert console_errors(browser) == []


def test_pause_and_resume_from_the_page(console_stack: LocalStack, page: WebDriver) -> None:
    browser = page
    browser.get(console_stack.url + "/")
    wait_for(lambda: text_of(browser, "#engine-state"), lambda t: t == "running", what="running")
    click(browser, "#pause")
    click(browser, "#confirm-ok")
    wait_for(lambda: text_of(browser, "#engine-state"), lambda t: "paused" in t, what="paused")
    assert console_stack.get("/engine")["paused_by_operator"] is True
    status, reply = console_stack.signal(entry_signal(console_stack.secret, "LINKUSDT", 15))
    assert (status, reply["outcome"], reply["reason"]) == (202, "rejected", "engine paused by the operator")
    click(browser, "#resume")
    click(browser, "#confirm-ok")
    wait_for(lambda: text_of(browser, "#engine-state"), lambda t: t == "running", what="running again")
    assert console_errors(browser) == []


def test_analytics_after_one_winning_and_one_losing_group(console_stack: LocalStack) -> None:
    # Given two groups on the bybit account (kept apart from the other tests' binance groups)
    stack = console_stack
    stack.prices({"ETH/USDT": 3000, "SOL/USDT": 150})
    ids = []
    for symbol, price in (("ETHUSDT", 3000), ("SOLUSDT", 150)):
        status, reply = stack.signal(
            entry_signal(stack.secret, symbol, price, exchange="bybit", timeframe="30")
        )
        assert (status, reply["outcome"]) == (202, "opened"), reply
        ids.append(reply["group_id"])
    for group_id in ids:
        stack.tick_until(lambda gid=group_id: stack.group(gid), lambda d: d["group"]["filled_legs"] >= 1)
    # When ETH closes above its entry and SOL below
    stack.prices({"ETH/USDT": 3030, "SOL/USDT": 147})
    for symbol, price in (("ETHUSDT", 3030), ("SOLUSDT", 147)):
        stack.signal(exit_signal(stack.secret, symbol, price, exchange="bybit", timeframe="30"))
    closed = [stack.tick_until(lambda gid=gid: stack.group(gid), lambda d: d["group"]["status"] == "closed")
              for gid in ids]  # fmt: skip
    win, loss = (detail["group"]["realized_pnl_usd"] for detail in closed)
    assert win > 0 > loss

    # Then the analytics of the account count two trades, half won, profit factor win / |loss|
    figures = stack.get("/analytics?period=all&account=bybit")
    assert (figures["trades"], figures["wins"], figures["losses"]) == (2, 1, 1)
    assert figures["win_rate"] == 50
    assert figures["profit_factor"] == pytest.approx(win / -loss, abs=1e-4)
    assert figures["realized_usd"] == pytest.approx(win + loss)
    csv_status, csv_body = stack.request("GET", "/groups?status=closed&format=csv&account=bybit")
    assert csv_status == 200 and all(gid in str(csv_body) for gid in ids)


def test_render_time_with_50_open_groups(console_stack: LocalStack, page: WebDriver) -> None:
    stack, browser = console_stack, page
    symbols = ["BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "AVAX", "LINK", "LTC"]
    prices = {"BTC": 60000, "ETH": 3000, "SOL": 150, "BNB": 600, "XRP": 0.6, "DOGE": 0.15, "ADA": 0.45,
              "AVAX": 30, "LINK": 15, "LTC": 80}  # fmt: skip
    stack.prices({f"{s}/USDT": p for s, p in prices.items()})
    open_now = stack.pool()["open"]
    for timeframe in ("5", "15", "60", "240", "1440"):
        for symbol in symbols:
            if stack.pool()["open"] >= 50:
                break
            signal = entry_signal(
                stack.secret, f"{symbol}USDT", prices[symbol], size_usd=60, timeframe=timeframe
            )
            stack.signal(signal)
    assert stack.pool()["open"] >= 50 > open_now
    browser.get(stack.url + "/")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#groups tr[data-group]")), lambda n: n >= 50,
             what="50 rows")  # fmt: skip
    stats: dict[str, Any] = wait_for(
        lambda: browser.execute_script("return window.consoleStats"),
        lambda s: s["firstRenderMs"] is not None,
        timeout=60,
        what="a complete render",
    )
    print(
        f"\nconsole with {stack.pool()['open']} open groups: pool, queue and groups drawn "
        f"{stats['firstGroupsMs']} ms after navigation start, every panel {stats['firstRenderMs']} ms; "
        f"one full refresh {stats['lastRenderMs']} ms"
    )
    assert console_errors(browser) == []
