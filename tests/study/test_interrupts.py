"""The driver's deferred Ctrl-C (``study.interrupts``), in this process: a real SIGINT."""

from __future__ import annotations

import signal

import pytest

from study.interrupts import DeferredCtrlC


@pytest.fixture(autouse=True)
def _ctrl_c_as_from_a_terminal():
    """Python's own SIGINT handler, as a driver started from a terminal has it, even when
    the tests run where SIGINT is ignored (started in the background with ``&``)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_waits_for_the_check_and_a_second_one_does_not() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with DeferredCtrlC() as ctrl_c:
        ctrl_c.check()  # nothing yet
        signal.raise_signal(signal.SIGINT)  # noted, not raised
        assert ctrl_c.pending
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()
        with pytest.raises(KeyboardInterrupt):  # the second: at once
            signal.raise_signal(signal.SIGINT)
        ctrl_c.release()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):  # Python's own again
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job started with `&`
    try:
        with DeferredCtrlC() as ctrl_c:
            signal.raise_signal(signal.SIGINT)
            assert not ctrl_c.pending
            ctrl_c.check()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_restore_takes_ctrl_c_back_from_a_handler_left_behind() -> None:
    seen = []
    with DeferredCtrlC() as ctrl_c:
        ctrl_c.release()
        signal.signal(signal.SIGINT, lambda *_: seen.append(1))  # as Tune's loop leaves it
        signal.raise_signal(signal.SIGINT)
        assert seen == [1]
        ctrl_c.restore()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert seen == [1]
