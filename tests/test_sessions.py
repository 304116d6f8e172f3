"""The session rules, with an injected clock: no test sleeps for the 30-second timeout."""

from __future__ import annotations

import itertools

import pytest

from bugsnag_ipython.core.sessions import SessionSnapshot, SessionTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_tracker(clock: Clock, *, auto: bool = True, timeout: float = 30.0) -> SessionTracker:
    ids = (f"session-{n}" for n in itertools.count(1))
    return SessionTracker(
        auto_track=auto,
        background_timeout=timeout,
        monotonic=clock,
        wall_clock=lambda: 1_700_000_000.0 + clock.now,
        new_id=lambda: next(ids),
    )


def test_launch_starts_a_session_and_announces_it(clock: Clock) -> None:
    tracker = make_tracker(clock)
    announced: list[SessionSnapshot] = []
    tracker.add_listener(announced.append)
    tracker.launch(in_background=True)
    current = tracker.current()
    assert current is not None and current.id == "session-1"
    assert [s.id for s in announced] == ["session-1"]
    assert tracker.counts.sessions_started == 1


def test_launch_without_automatic_tracking_starts_nothing(clock: Clock) -> None:
    tracker = make_tracker(clock, auto=False)
    tracker.launch(in_background=True)
    clock.advance(3600)
    tracker.enter_foreground()
    assert tracker.current() is None
    assert tracker.counts.sessions_started == 0


@pytest.mark.parametrize(
    ("idle", "new_session"),
    [(0.0, False), (29.999, False), (30.0, True), (30.001, True), (600.0, True)],
)
def test_return_to_foreground_after_the_timeout_starts_a_session(
    clock: Clock, idle: float, new_session: bool
) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    clock.advance(idle)
    started = tracker.enter_foreground()
    assert (started is not None) is new_session
    expected = "session-2" if new_session else "session-1"
    assert tracker.current() is not None and tracker.current().id == expected  # type: ignore[union-attr]


def test_idle_time_counts_from_the_end_of_the_last_cell(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    tracker.enter_foreground()
    clock.advance(100)  # a long cell is foreground time, not background
    tracker.enter_background()
    clock.advance(20)
    assert tracker.enter_foreground() is None
    assert tracker.in_foreground


@pytest.mark.parametrize(("idle", "new_session"), [(29.999, False), (30.0, True)])
def test_the_times_a_caller_read_are_the_ones_that_count(
    clock: Clock, idle: float, new_session: bool
) -> None:
    # The cell's own start and end times, read once by the glue, decide; not a later clock read.
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    tracker.enter_foreground(clock.now)
    tracker.enter_background(clock.now + 5)
    clock.advance(3600)
    assert (tracker.enter_foreground(clock.now - 3600 + 5 + idle) is not None) is new_session


def test_load_in_a_cell_begins_background_when_that_cell_ends(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=False)
    clock.advance(100)  # still inside the %load_ext cell
    tracker.enter_background()
    clock.advance(10)
    assert tracker.enter_foreground() is None
    assert tracker.counts.sessions_started == 1


def test_a_custom_timeout_is_honoured(clock: Clock) -> None:
    tracker = make_tracker(clock, timeout=2.0)
    tracker.launch(in_background=True)
    clock.advance(2.0)
    assert tracker.enter_foreground() is not None


def test_start_always_replaces_the_current_session(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    first = tracker.current()
    second = tracker.start_session()
    assert first is not None and second.id != first.id
    assert tracker.current() == second
    tracker.pause_session()
    third = tracker.start_session()
    assert not third.paused and third.id == "session-3"


def test_pause_without_a_session_is_a_no_op(clock: Clock) -> None:
    tracker = make_tracker(clock, auto=False)
    assert tracker.pause_session() is False
    assert tracker.current() is None


def test_resume_returns_true_only_for_a_paused_session(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    tracker.pause_session()
    assert tracker.current().paused  # type: ignore[union-attr]
    resumed, session = tracker.resume_session()
    assert resumed is True and session.id == "session-1" and not session.paused
    resumed, session = tracker.resume_session()  # not paused: nothing to resume
    assert resumed is False and session.id == "session-1"
    assert tracker.counts.sessions_started == 1


def test_resume_without_a_session_starts_one_and_returns_false(clock: Clock) -> None:
    tracker = make_tracker(clock, auto=False)
    announced: list[SessionSnapshot] = []
    tracker.add_listener(announced.append)
    resumed, session = tracker.resume_session()
    assert resumed is False and session.id == "session-1"
    assert [s.id for s in announced] == ["session-1"]


def test_manual_sessions_work_with_automatic_tracking_off(clock: Clock) -> None:
    tracker = make_tracker(clock, auto=False)
    tracker.launch(in_background=True)
    session = tracker.start_session()
    clock.advance(3600)
    tracker.enter_foreground()  # no automatic session even after an hour
    assert tracker.current() is not None and tracker.current().id == session.id  # type: ignore[union-attr]


def test_timeout_return_starts_a_new_session_even_when_paused(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    tracker.pause_session()
    clock.advance(31)
    started = tracker.enter_foreground()
    assert started is not None and not started.paused and started.id == "session-2"


def test_short_return_keeps_a_paused_session_paused(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    tracker.pause_session()
    clock.advance(5)
    assert tracker.enter_foreground() is None
    assert tracker.current().paused  # type: ignore[union-attr]


def test_events_count_on_the_current_session_and_include_themselves(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    first = tracker.track_event(unhandled=True)
    assert first is not None and (first.handled, first.unhandled) == (0, 1)
    second = tracker.track_event(unhandled=False)
    assert second is not None and (second.handled, second.unhandled) == (1, 1)
    tracker.track_event(unhandled=True)
    assert tracker.counts.sessions_with_unhandled == 1  # the session, not the event, counts


def test_events_while_paused_or_without_a_session_move_no_counter(clock: Clock) -> None:
    tracker = make_tracker(clock)
    assert tracker.track_event(unhandled=True) is None  # no session yet
    tracker.launch(in_background=True)
    tracker.pause_session()
    assert tracker.track_event(unhandled=True) is None
    tracker.resume_session()
    snapshot = tracker.track_event(unhandled=True)
    assert snapshot is not None and snapshot.unhandled == 1
    assert tracker.counts.sessions_with_unhandled == 1


def test_counters_start_at_zero_in_each_new_session(clock: Clock) -> None:
    tracker = make_tracker(clock)
    tracker.launch(in_background=True)
    tracker.track_event(unhandled=True)
    tracker.start_session()
    snapshot = tracker.track_event(unhandled=False)
    assert snapshot is not None and (snapshot.handled, snapshot.unhandled) == (1, 0)
    assert tracker.counts.sessions_started == 2
    assert tracker.counts.sessions_with_unhandled == 1
