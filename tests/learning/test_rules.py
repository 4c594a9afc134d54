"""Crediting rules: honest watchers earn their time; fast, skipping and lying clients do not."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from app.learning.rules import (
    BUCKET_S,
    CAP_HEARTBEATS,
    END_TOLERANCE_S,
    SKIP_TOLERANCE_S,
    CreditResult,
    Heartbeat,
    Reason,
    SessionState,
    bucket_count,
    buckets_for,
    coverage,
    credit,
    is_complete,
    merge_intervals,
)

HEARTBEAT_S = 15.0
START_AT = 1_000_000.0


def fresh(duration_s: float = 600.0, *, furthest_s: float = 0.0, credited_s: float = 0.0):
    return SessionState(
        last_at=None,
        last_position_s=None,
        furthest_s=furthest_s,
        lesson_credited_s=credited_s,
        duration_s=duration_s,
    )


def beat(
    at: float,
    position_s: float,
    *,
    hidden: bool = False,
    playing: bool = True,
    seq: int | None = None,
):
    return Heartbeat(
        at=START_AT + at, position_s=position_s, hidden=hidden, playing=playing, seq=seq
    )


@dataclass
class Run:
    results: list[CreditResult]
    state: SessionState

    @property
    def credited_s(self) -> float:
        return sum(result.credited_s for result in self.results)

    @property
    def intervals(self) -> list[tuple[float, float]]:
        return [interval for result in self.results for interval in result.covered]

    @property
    def reasons(self) -> list[Reason | None]:
        return [result.reason for result in self.results]

    @property
    def coverage(self) -> float:
        return coverage(buckets_for(self.intervals, self.state.duration_s), self.state.duration_s)

    @property
    def complete(self) -> bool:
        return is_complete(self.coverage, self.state.lesson_credited_s, self.state.duration_s)


def play(state: SessionState, beats: Sequence[Heartbeat]) -> Run:
    results = []
    for each in beats:
        result = credit(state, each, heartbeat_s=HEARTBEAT_S)
        results.append(result)
        state = result.new_state
    return Run(results, state)


def watching(
    duration_s: float,
    *,
    speed: float = 1.0,
    from_s: float = 0.0,
    at: float = 0.0,
    latency: random.Random | None = None,
) -> list[Heartbeat]:
    """A player at `speed` from `from_s` to the end, beating every HEARTBEAT_S and at `ended`."""
    end_at = (duration_s - from_s) / speed
    times = [k * HEARTBEAT_S for k in range(math.ceil(end_at / HEARTBEAT_S))] + [end_at]
    delay = (lambda: latency.uniform(0.05, 0.5)) if latency else (lambda: 0.0)
    return [beat(at + t + delay(), min(from_s + t * speed, duration_s)) for t in times]


def test_first_heartbeat_anchors_without_credit():
    result = credit(fresh(), beat(0, 42.0), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 0
    assert result.reason is Reason.FIRST_HEARTBEAT
    assert result.covered == ()
    assert result.new_state.last_at == START_AT
    assert result.new_state.last_position_s == 42.0


def test_honest_watcher_at_1x_is_credited_the_whole_lesson():
    run = play(fresh(600.0), watching(600.0))

    assert run.credited_s == pytest.approx(600.0)
    assert run.state.lesson_credited_s == pytest.approx(600.0)
    assert run.reasons[0] is Reason.FIRST_HEARTBEAT
    assert set(run.reasons[1:]) == {None}
    assert merge_intervals(run.intervals) == ((0.0, 600.0),)
    assert run.coverage == 1.0
    assert run.complete


def test_honest_watcher_with_network_jitter_is_credited_nearly_all_and_completes():
    run = play(fresh(600.0), watching(600.0, latency=random.Random(7)))  # noqa: S311 - not crypto

    assert 0.98 * 600 <= run.credited_s <= 600.0
    assert Reason.AHEAD_OF_FURTHEST not in run.reasons
    assert run.coverage >= 0.95
    assert run.complete


def test_position_advancing_faster_than_wall_time_is_capped_at_wall_time():
    state = credit(fresh(), beat(0, 0.0), heartbeat_s=HEARTBEAT_S).new_state

    result = credit(state, beat(15, 60.0), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 15.0
    assert result.reason is Reason.TOO_FAST
    assert result.covered == ((0.0, 15.0),)
    assert result.new_state.furthest_s == 15.0


def test_script_sending_four_times_real_speed_earns_at_most_wall_time():
    run = play(fresh(600.0), watching(600.0, speed=4.0))

    wall_s = run.results[-1].new_state.last_at - START_AT
    assert run.credited_s <= wall_s
    assert run.credited_s <= 15.0
    assert not run.complete


def test_gap_longer_than_two_heartbeats_credits_nothing_and_reanchors():
    state = credit(fresh(furthest_s=300.0), beat(0, 100.0), heartbeat_s=HEARTBEAT_S).new_state

    gap = credit(state, beat(31, 131.0), heartbeat_s=HEARTBEAT_S)
    after = credit(gap.new_state, beat(46, 146.0), heartbeat_s=HEARTBEAT_S)

    assert gap.credited_s == 0
    assert gap.reason is Reason.GAP
    assert gap.covered == ()
    assert (gap.new_state.last_at, gap.new_state.last_position_s) == (START_AT + 31, 131.0)
    assert after.credited_s == 15.0
    assert after.covered == ((131.0, 146.0),)


def test_gap_of_exactly_two_heartbeats_is_capped_not_closed():
    state = credit(fresh(), beat(0, 0.0), heartbeat_s=HEARTBEAT_S).new_state

    result = credit(state, beat(30, 30.0), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == CAP_HEARTBEATS * HEARTBEAT_S
    assert result.reason is Reason.CAPPED_INTERVAL


def test_server_clock_going_back_closes_the_span():
    state = credit(fresh(), beat(100, 0.0), heartbeat_s=HEARTBEAT_S).new_state

    result = credit(state, beat(90, 10.0), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 0
    assert result.reason is Reason.GAP


def test_a_lost_heartbeat_costs_its_gap_and_credit_goes_on_after_it():
    # 15 s heartbeats at 1x; the one at 30 s and the one at 45 s are lost: the 60 s beat only
    # re-anchors, and every later one is credited as if nothing had happened.
    beats = [beat(t, float(t)) for t in (0, 15, 60, 75, 90, 105)]

    run = play(fresh(), beats)

    assert run.reasons == [Reason.FIRST_HEARTBEAT, None, Reason.GAP, None, None, None]
    assert run.credited_s == 15.0 + 45.0
    assert run.state.furthest_s == 105.0


def test_one_lost_heartbeat_costs_at_most_its_gap():
    # The beat at 30 s is lost; the 45 s one comes 30 s after the last: capped, not refused,
    # and the next one is credited in full (it used to be refused as ahead of furthest).
    run = play(fresh(), [beat(t, float(t)) for t in (0, 15, 45, 60, 75)])

    assert run.reasons == [Reason.FIRST_HEARTBEAT, None, Reason.CAPPED_INTERVAL, None, None]
    assert run.credited_s == 15.0 + CAP_HEARTBEATS * HEARTBEAT_S + 30.0
    assert 75.0 - run.credited_s <= 30.0 - 15.0  # lost: part of the gap around the lost beat


def test_skipping_ahead_during_a_gap_still_earns_nothing_until_the_player_returns():
    # Silent for 45 s, and the position moved 200 s: faster than real time, so not a lost
    # heartbeat but a skip.
    run = play(fresh(), [beat(0, 0.0), beat(15, 15.0), beat(60, 215.0), beat(75, 230.0)])

    assert run.reasons[2:] == [Reason.GAP, Reason.AHEAD_OF_FURTHEST]
    assert run.state.furthest_s == 15.0
    back = play(run.state, [beat(76, 15.0), beat(91, 30.0)])
    assert back.reasons == [Reason.NO_PROGRESS, None]
    assert back.credited_s == 15.0


def test_a_gap_does_not_launder_an_earlier_skip():
    run = play(fresh(), [beat(0, 0.0), beat(15, 100.0), beat(60, 145.0), beat(75, 160.0)])

    assert run.reasons[1:] == [Reason.TOO_FAST, Reason.GAP, Reason.AHEAD_OF_FURTHEST]
    assert run.state.furthest_s == 15.0


def test_repeated_sequence_number_is_ignored_entirely():
    state = fresh()
    first = credit(state, beat(0, 0.0, seq=1), heartbeat_s=HEARTBEAT_S).new_state
    second = credit(first, beat(15, 15.0, seq=2), heartbeat_s=HEARTBEAT_S)

    again = credit(second.new_state, beat(15.2, 15.0, seq=2), heartbeat_s=HEARTBEAT_S)
    stale = credit(second.new_state, beat(16, 5.0, seq=1), heartbeat_s=HEARTBEAT_S)

    assert second.credited_s == 15.0
    assert (again.credited_s, again.reason, again.new_state) == (
        0.0,
        Reason.REPEATED,
        second.new_state,
    )
    assert (stale.credited_s, stale.reason, stale.new_state) == (
        0.0,
        Reason.REPEATED,
        second.new_state,
    )


def test_duplicate_without_sequence_number_earns_nothing():
    state = credit(fresh(), beat(0, 0.0), heartbeat_s=HEARTBEAT_S).new_state
    once = credit(state, beat(15, 15.0), heartbeat_s=HEARTBEAT_S)

    twice = credit(once.new_state, beat(15.05, 15.0), heartbeat_s=HEARTBEAT_S)

    assert once.credited_s == 15.0
    assert (twice.credited_s, twice.reason) == (0.0, Reason.NO_PROGRESS)


def test_hidden_page_is_paid_up_to_the_moment_it_hid_then_nothing():
    run = play(fresh(), [beat(0, 0.0), beat(15, 15.0, hidden=True), beat(30, 30.0, hidden=True)])

    assert [r.credited_s for r in run.results] == [0, 15.0, 0]
    assert run.reasons[2] is Reason.HIDDEN
    assert run.state.lesson_credited_s == 15.0


def test_pause_is_paid_up_to_the_pause_then_nothing():
    run = play(
        fresh(), [beat(0, 0.0), beat(10, 10.0, playing=False), beat(25, 25.0, playing=False)]
    )

    assert [r.credited_s for r in run.results] == [0, 10.0, 0]
    assert run.reasons[2] is Reason.PAUSED


def test_hidden_page_that_keeps_reporting_hidden_earns_nothing_after_hiding():
    beats = [beat(0, 0.0)] + [beat(15 * k, 15.0 * k, hidden=True) for k in range(1, 40)]

    run = play(fresh(), beats)

    assert run.credited_s == 15.0  # the stretch before the page was hidden
    assert not run.complete


def test_hiding_does_not_strand_the_trainee_ahead_of_furthest():
    # The player pauses when the page is hidden: it played 0..10 s, then the page was hidden.
    run = play(fresh(), [beat(0, 0.0), beat(15, 10.0, hidden=True), beat(30, 12.0)])

    assert [r.credited_s for r in run.results] == [0, 10.0, 0]
    assert run.reasons[1:] == [None, Reason.PAUSED]
    assert run.intervals == [(0.0, 10.0), (10.0, 12.0)]
    assert run.state.furthest_s == 12.0


def test_paused_player_earns_again_once_a_playing_heartbeat_anchored():
    paused = [beat(15, 15.0, playing=False), beat(30, 15.0, playing=False)]

    run = play(fresh(), [beat(0, 0.0), *paused, beat(31, 15.0), beat(46, 30.0)])

    assert run.reasons[1:] == [None, Reason.PAUSED, Reason.PAUSED, None]
    assert [r.credited_s for r in run.results] == [0, 15.0, 0, 0, 15.0]


def test_jumping_ahead_never_earns_for_the_jumped_region_or_beyond():
    jumps = [beat(0, 0.0), beat(15, 15.0), beat(30, 200.0)]
    watching_on = [beat(30 + 15 * k, 200.0 + 15 * k) for k in range(1, 10)]

    run = play(fresh(), jumps + watching_on)

    assert run.credited_s == 30.0
    assert max(end for _, end in run.intervals) == 30.0
    assert run.reasons[2] is Reason.TOO_FAST
    assert set(run.reasons[3:]) == {Reason.AHEAD_OF_FURTHEST}
    assert run.state.furthest_s == 30.0


def test_late_heartbeat_followed_by_a_prompt_one_keeps_earning():
    beats = [beat(0, 0.0), beat(17.9, 15.0), beat(30, 30.0), beat(45, 45.0)]

    run = play(fresh(), beats)

    assert run.reasons[1:] == [None, None, None]
    # Rounding down to the millisecond may lose one on a difference of two epoch times.
    assert [r.credited_s for r in run.results] == pytest.approx([0, 15.0, 12.1, 15.0], abs=0.001)


def test_position_within_skip_tolerance_of_furthest_still_earns():
    state = SessionState(
        last_at=START_AT,
        last_position_s=100.0 + SKIP_TOLERANCE_S,
        furthest_s=100.0,
        lesson_credited_s=100.0,
        duration_s=600.0,
        last_active=True,
    )

    result = credit(state, beat(15, 115.0 + SKIP_TOLERANCE_S), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 15.0
    assert result.reason is None


def test_scripted_skipper_ends_with_low_coverage_and_incomplete():
    beats = [beat(15 * k, min(60.0 * k, 600.0)) for k in range(11)]

    run = play(fresh(600.0), beats)

    assert run.credited_s <= 30.0
    assert run.coverage < 0.1
    assert not run.complete


def test_seeking_back_earns_nothing_and_a_stretch_is_credited_once_per_session():
    run = play(fresh(), [beat(0, 0.0), beat(15, 15.0), beat(30, 30.0), beat(31, 5.0)])
    rewatch = credit(run.state, beat(46, 20.0), heartbeat_s=HEARTBEAT_S)
    on = credit(rewatch.new_state, beat(61, 35.0), heartbeat_s=HEARTBEAT_S)

    assert run.results[-1].reason is Reason.NO_PROGRESS
    assert run.results[-1].credited_s == 0
    assert (rewatch.credited_s, rewatch.reason) == (0.0, Reason.ALREADY_CREDITED)
    assert rewatch.covered == ((5.0, 20.0),)
    assert rewatch.new_state.furthest_s == 30.0
    assert (on.credited_s, on.reason) == (5.0, Reason.ALREADY_CREDITED)  # 30-35 s is new
    # Another session may credit it again, up to the lesson's length.
    later = replace(on.new_state, last_at=None, last_position_s=None, credited_spans=())
    again = play(later, [beat(200, 5.0), beat(215, 20.0)])
    assert again.credited_s == 15.0


def test_heartbeat_overtaken_without_sequence_number_is_not_credited_twice():
    # The beat sent at 45 s arrives after the one sent at 60 s, then the one at 75 s comes.
    run = play(fresh(), [beat(0, 0.0), beat(15, 15.0), beat(30, 30.0), beat(60, 60.0)])
    late = play(run.state, [beat(60.5, 45.0), beat(75, 75.0)])

    # 30-52.5 s was credited when the 60 s beat came (capped); 45-59.5 s now overlaps it.
    assert late.results[0].reason is Reason.NO_PROGRESS
    assert (late.results[1].credited_s, late.results[1].reason) == (7.0, Reason.ALREADY_CREDITED)
    assert late.state.credited_spans == ((0.0, 59.5),)
    assert run.credited_s + late.credited_s == 59.5


def test_rewatching_stops_earning_at_the_lesson_duration():
    first = play(fresh(60.0), watching(60.0, at=0.0))
    second = play(first.state, watching(60.0, at=200.0))

    assert first.credited_s == pytest.approx(60.0)
    assert second.credited_s == 0
    assert Reason.LESSON_FULL in second.reasons
    assert second.state.lesson_credited_s == pytest.approx(60.0)


def test_lesson_full_still_records_coverage_so_a_rewatcher_can_complete():
    repeats = [play(fresh(120.0), watching(60.0, at=0.0)).state]
    for round_ in range(1, 3):
        session = replace(repeats[-1], credited_spans=())  # each round a session of its own
        repeats.append(play(session, watching(60.0, at=200.0 * round_)).state)
    full = repeats[-1]
    assert full.lesson_credited_s == pytest.approx(120.0)

    rest = play(full, watching(120.0, from_s=60.0, at=1000.0))

    assert rest.credited_s == 0
    assert merge_intervals(rest.intervals) == ((60.0, 120.0),)
    assert rest.state.furthest_s == 120.0
    everything = buckets_for([(0.0, 60.0), *rest.intervals], 120.0)
    assert is_complete(coverage(everything, 120.0), rest.state.lesson_credited_s, 120.0)


def test_last_bit_of_lesson_credit_is_partial():
    state = SessionState(
        last_at=START_AT,
        last_position_s=0.0,
        furthest_s=0.0,
        lesson_credited_s=595.5,
        duration_s=600.0,
        last_active=True,
    )

    result = credit(state, beat(15, 15.0), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 4.5
    assert result.reason is Reason.LESSON_FULL
    assert result.covered == ((0.0, 15.0),)
    assert result.new_state.lesson_credited_s == 600.0


def test_2x_playback_earns_at_most_1x():
    run = play(fresh(600.0), watching(600.0, speed=2.0))

    wall_s = run.results[-1].new_state.last_at - START_AT
    assert run.credited_s <= wall_s
    assert all(r.credited_s <= HEARTBEAT_S for r in run.results)
    assert not run.complete


@pytest.mark.parametrize(
    "position_s", [math.nan, -0.001, -math.inf, math.inf, 600.0 + END_TOLERANCE_S + 0.001]
)
def test_unusable_position_credits_nothing_and_leaves_state_unchanged(position_s):
    state = credit(fresh(), beat(0, 0.0), heartbeat_s=HEARTBEAT_S).new_state

    result = credit(state, beat(15, position_s), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 0
    assert result.reason is Reason.INVALID_POSITION
    assert result.covered == ()
    assert result.new_state == state


def test_position_just_past_the_end_is_taken_as_the_end():
    state = credit(fresh(100.0, furthest_s=90.0), beat(0, 90.0), heartbeat_s=HEARTBEAT_S).new_state

    result = credit(state, beat(10, 100.0 + END_TOLERANCE_S), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 10.0
    assert result.new_state.last_position_s == 100.0


def test_credit_is_whole_milliseconds_rounded_down():
    state = credit(fresh(), beat(0, 0.0), heartbeat_s=HEARTBEAT_S).new_state

    result = credit(state, beat(10.0004, 10.0009), heartbeat_s=HEARTBEAT_S)

    assert result.credited_s == 10.0


def test_nonsense_server_side_values_are_refused():
    with pytest.raises(ValueError, match="duration_s"):
        fresh(math.nan)
    with pytest.raises(ValueError, match="at must be finite"):
        Heartbeat(at=math.inf, position_s=0.0, hidden=False)
    with pytest.raises(ValueError, match="heartbeat_s"):
        credit(fresh(), beat(0, 0.0), heartbeat_s=0)


def test_bucket_count_gives_the_tail_its_own_bucket_from_half_a_bucket():
    assert bucket_count(0) == 0
    assert bucket_count(3.0) == 1
    assert bucket_count(120.0) == 12
    assert bucket_count(125.0) == 13
    assert bucket_count(124.9) == 12
    assert BUCKET_S == 10


def test_last_partial_bucket_needs_most_of_its_own_length_and_counts_as_one():
    assert 12 in buckets_for([(120.0, 124.0)], 125.0)
    assert 12 not in buckets_for([(120.0, 123.9)], 125.0)
    assert coverage(set(range(13)), 125.0) == 1.0
    assert coverage(set(range(12)), 125.0) == pytest.approx(12 / 13)
    # A 0.1 s tail joins the bucket before, so a player ending a hair early still covers it.
    assert buckets_for([(0.0, 120.0)], 120.1) == set(range(12))


def test_bucket_is_marked_from_the_union_of_intervals_not_from_repeats():
    assert buckets_for([(10.0, 15.0), (15.0, 20.0)], 600.0) == {1}
    assert buckets_for([(10.0, 15.0), (10.0, 15.0)], 600.0) == set()
    assert buckets_for([(10.0, 17.9)], 600.0) == set()


def test_buckets_ignore_intervals_outside_the_lesson_or_malformed():
    intervals = [(-50.0, -1.0), (700.0, 800.0), (30.0, 20.0), (math.nan, 5.0), (0.0, math.inf)]
    assert buckets_for(intervals, 600.0) == set()
    assert coverage({-1, 60, 99}, 600.0) == 0.0


@pytest.mark.parametrize(
    ("coverage_", "credited_s", "complete"),
    [(0.95, 90.0, True), (0.949, 100.0, False), (1.0, 89.999, False), (1.0, 100.0, True)],
)
def test_completion_needs_95_percent_coverage_and_90_percent_credit(
    coverage_, credited_s, complete
):
    assert is_complete(coverage_, credited_s, 100.0) is complete


def _random_beats(rng: random.Random, duration_s: float, count: int) -> list[Heartbeat]:
    beats = []
    at, position = rng.uniform(0, 100), rng.uniform(0, duration_s)
    for _ in range(count):
        at += rng.choice([0.0, rng.uniform(0, 1), rng.uniform(10, 20), rng.uniform(20, 30)])
        at += rng.choice([0.0, 0.0, 0.0, rng.uniform(30, 90)])
        kind = rng.random()
        if kind < 0.5:
            position += rng.uniform(0, 25)
        elif kind < 0.7:
            position = rng.uniform(0, duration_s + 5)
        elif kind < 0.8:
            position += rng.uniform(25, 300)
        elif kind < 0.9:
            position = rng.choice([math.nan, math.inf, -math.inf, -rng.uniform(0, 10)])
        position_s = position
        if not math.isfinite(position) or position < 0:
            position = rng.uniform(0, duration_s)
        beats.append(beat(at, position_s, hidden=rng.random() < 0.1, playing=rng.random() > 0.1))
    return beats


@pytest.mark.parametrize("seed", range(400))
def test_no_sequence_of_heartbeats_earns_more_than_wall_time_or_duration(seed):
    rng = random.Random(seed)  # noqa: S311 - reproducible fuzzing, not crypto
    duration_s = rng.choice([5.0, 61.5, 600.0, rng.uniform(1, 1200)])
    state = SessionState(
        last_at=None,
        last_position_s=None,
        furthest_s=rng.choice([0.0, rng.uniform(0, duration_s)]),
        lesson_credited_s=rng.choice([0.0, rng.uniform(0, duration_s)]),
        duration_s=duration_s,
    )
    beats = _random_beats(rng, duration_s, rng.randint(1, 60))
    start = state
    total_s = covered_s = 0.0

    for each in beats:
        result = credit(state, each, heartbeat_s=HEARTBEAT_S)
        new = result.new_state
        wall_s = each.at - state.last_at if state.last_at is not None else 0.0
        assert 0 <= result.credited_s <= CAP_HEARTBEATS * HEARTBEAT_S
        assert result.credited_s <= max(wall_s, 0.0)
        assert result.credited_s * 1000 == pytest.approx(round(result.credited_s * 1000), abs=1e-6)
        assert new.lesson_credited_s == pytest.approx(state.lesson_credited_s + result.credited_s)
        assert new.lesson_credited_s <= duration_s
        assert new.furthest_s >= state.furthest_s
        for low, high in result.covered:
            assert 0 <= low < high <= duration_s
            length_s = high - low  # float sums: compare within a nanosecond
            assert result.credited_s <= length_s + 1e-9
            assert length_s <= min(wall_s, CAP_HEARTBEATS * HEARTBEAT_S) + 1e-9
            assert low <= state.furthest_s + SKIP_TOLERANCE_S
            covered_s += high - low
        if not result.covered:
            assert result.credited_s == 0
        if new.furthest_s > state.furthest_s + 1e-9 and state.last_at is None:
            # A session's first heartbeat: no more than the tolerance past the furthest point.
            assert new.furthest_s <= state.furthest_s + SKIP_TOLERANCE_S + 1e-9
        elif new.furthest_s > state.furthest_s + 1e-9:
            # Only a position reached no faster than real time from an honest anchor.
            assert each.at >= state.last_at
            assert state.last_position_s <= state.furthest_s + SKIP_TOLERANCE_S
            assert new.furthest_s <= state.last_position_s + (each.at - state.last_at) + (
                SKIP_TOLERANCE_S + 1e-9
            )
        if result.reason is Reason.INVALID_POSITION:
            assert new == state
        total_s += result.credited_s
        state = new

    wall_span_s = beats[-1].at - beats[0].at
    assert total_s <= min(duration_s - start.lesson_credited_s, wall_span_s) + 1e-6
    assert covered_s <= wall_span_s + 1e-6


def test_an_overlap_below_a_millisecond_is_rounding_not_a_repeat():
    state = replace(
        fresh(),
        last_at=START_AT,
        last_position_s=9.9646,
        furthest_s=9.9646,
        last_active=True,
        credited_spans=((0.0, 9.965),),
    )

    result = credit(state, beat(2, 11.9646), heartbeat_s=HEARTBEAT_S)

    assert (result.credited_s, result.reason) == (2.0, None)
