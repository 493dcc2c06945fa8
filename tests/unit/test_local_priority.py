"""The local runtime's priorities: a lower-level thread waits before its AWS requests while a
higher-level invocation runs (``engine.local.functions``)."""

from __future__ import annotations

import threading

from engine.local.functions import ANSWER, BACKGROUND, POLL, Priorities


def _admitted_in_thread(
    priorities: Priorities, level: int | None
) -> tuple[threading.Thread, threading.Event]:
    admitted = threading.Event()

    def run() -> None:
        if level is not None:
            priorities.assign(level)
        priorities.admit()
        admitted.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, admitted


def test_background_waits_while_an_answer_runs_and_goes_when_it_ends() -> None:
    # Given a webhook invocation in progress
    priorities = Priorities(max_wait=30)
    answer = priorities.running(ANSWER)
    answer.__enter__()
    # When a background thread wants to make an AWS request
    thread, admitted = _admitted_in_thread(priorities, BACKGROUND)
    # Then it waits
    assert not admitted.wait(0.2)
    # When the webhook's invocation ends, then the request goes ahead
    answer.__exit__(None, None, None)
    assert admitted.wait(10)
    thread.join(10)


def test_background_work_does_not_wait_for_other_background_work() -> None:
    priorities = Priorities(max_wait=30)
    with priorities.running(BACKGROUND):
        _, admitted = _admitted_in_thread(priorities, BACKGROUND)
        assert admitted.wait(10)


def test_threads_without_a_level_and_answers_never_wait() -> None:
    priorities = Priorities(max_wait=30)
    with priorities.running(ANSWER):
        _, unassigned = _admitted_in_thread(priorities, None)
        _, other_answer = _admitted_in_thread(priorities, ANSWER)
        assert unassigned.wait(10) and other_answer.wait(10)


def test_a_wait_is_bounded_so_background_work_never_starves() -> None:
    # Given an answer that runs for as long as the test lasts, and a short bound on waiting
    priorities = Priorities(max_wait=0.05)
    with priorities.running(ANSWER):
        # When background work asks, then it is admitted while the answer still runs
        _, admitted = _admitted_in_thread(priorities, BACKGROUND)
        assert admitted.wait(10)
    assert priorities.waits == 1


def test_an_invocation_runs_at_its_level_and_restores_the_thread_level() -> None:
    priorities = Priorities(max_wait=30)
    assert priorities.level_of("webhook") == ANSWER == priorities.level_of("operator_api")
    assert priorities.level_of("order_executor") == BACKGROUND == priorities.level_of("position_update")
    assert priorities.level_of("order_sync") == POLL
    assert priorities.level_of("risk_engine") == BACKGROUND
    priorities.assign(BACKGROUND)
    with priorities.running(ANSWER):
        priorities.admit()  # an answer is never held up by anyone
    priorities.admit()  # back in the background level, with nothing higher running
    with priorities.running(ANSWER):
        # a background thread started now waits for this answer
        _, waiting = _admitted_in_thread(priorities, BACKGROUND)
        assert not waiting.wait(0.2)
    assert waiting.wait(10)


def test_a_polling_pass_waits_behind_a_stream_consumer_for_at_most_its_own_bound() -> None:
    # Given a stream consumer's invocation in progress, and polling passes bounded to 0.3 s a request
    priorities = Priorities(max_wait=30, poll_wait=0.3)
    with priorities.running(BACKGROUND):
        # When the order sync wants to make an AWS request, then it waits
        thread, admitted = _admitted_in_thread(priorities, POLL)
        assert not admitted.wait(0.1)
        # And it goes ahead after its bound, although the consumer still runs
        assert admitted.wait(10)
        thread.join(10)
    # And a stream consumer is not held up by a polling pass
    with priorities.running(POLL):
        _, consumer = _admitted_in_thread(priorities, BACKGROUND)
        assert consumer.wait(10)


def test_a_polling_pass_waits_for_an_answer_before_it_waits_for_the_streams() -> None:
    # Given an answer and a stream consumer running, polling bounded to 30 s behind the streams
    priorities = Priorities(max_wait=30, poll_wait=30)
    answer, consumer = priorities.running(ANSWER), priorities.running(BACKGROUND)
    answer.__enter__()
    consumer.__enter__()
    thread, admitted = _admitted_in_thread(priorities, POLL)
    # When the answer ends, then the pass still waits for the consumer
    answer.__exit__(None, None, None)
    assert not admitted.wait(0.2)
    # When the consumer's invocation ends too, then the pass goes ahead
    consumer.__exit__(None, None, None)
    assert admitted.wait(10)
    thread.join(10)
