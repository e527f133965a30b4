"""Shared pacing (hub/polling.py): one waiter looks often, many waiters look as often in total."""

from __future__ import annotations

from hub.polling import SharedPace


def test_one_waiter_gets_the_base_pause_and_many_share_one_rate() -> None:
    pace = SharedPace(0.05, 0.5)
    assert pace.pause() == 0.05  # nobody counted yet: still the base pause
    with pace.waiting():
        assert pace.pause() == 0.05
        with pace.waiting(), pace.waiting(), pace.waiting():
            assert pace.pause() == 0.2  # four waiters: each looks four times less often
            with pace.waiting(), pace.waiting(), pace.waiting(), pace.waiting(), pace.waiting(), pace.waiting():
                assert pace.pause() == 0.5  # ten would be 0.5 anyway; more never wait longer than that
                with pace.waiting():
                    assert pace.pause() == 0.5
        assert pace.pause() == 0.05
    assert pace.waiters == 0


def test_a_longer_pause_asked_for_is_kept_up_to_the_most() -> None:
    pace = SharedPace(0.05, 0.5)
    with pace.waiting():
        assert pace.pause(at_least=0.3) == 0.3  # a slow start's own pause (a share of its wait so far)
        assert pace.pause(at_least=2.0) == 0.5


def test_a_waiter_that_fails_is_no_longer_counted() -> None:
    pace = SharedPace(0.02, 0.2)
    try:
        with pace.waiting():
            raise RuntimeError("the start failed")
    except RuntimeError:
        pass
    assert pace.waiters == 0 and pace.pause() == 0.02
