"""Crediting rules for study time: what a heartbeat earns, which stretches were watched, completion.

Pure functions over small frozen values; the service loads state from rows, calls these and stores
the result. Every bound here is enforced on the server's clock and the server's record: the
browser's own account of time and progress is never trusted beyond what these rules allow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

# A gap longer than this many heartbeats closes the span: the next heartbeat only re-anchors.
GAP_HEARTBEATS = 2.0
# No single heartbeat earns more than this many heartbeats' worth, however long the gap.
CAP_HEARTBEATS = 1.5
# How far a position may lie beyond the furthest point reached and still be credited from. It
# absorbs network jitter (a late heartbeat followed by a prompt one moves the position further
# than the server's clock did); it is also the most a client can skip per heartbeat unseen.
# The player reads it from the page (`data-skip-tolerance-s`) to steer seeks.
SKIP_TOLERANCE_S = 3.0
# Players report slightly different durations than ffprobe; positions this far past the end are
# taken as the end, further ones are invalid.
END_TOLERANCE_S = 2.0

BUCKET_S = 10
# A bucket counts as watched when the covered intervals span this share of it.
BUCKET_MIN_FRACTION = 0.8
COMPLETE_COVERAGE = 0.95
COMPLETE_CREDIT = 0.9

Interval = tuple[float, float]
_EPSILON_S = 1e-9
_MS = 0.001  # credit is kept in whole milliseconds: overlaps below one are rounding


class Reason(StrEnum):
    """Why a heartbeat earned less than the wall time since the previous one (stable codes)."""

    FIRST_HEARTBEAT = "first_heartbeat"
    GAP = "gap"
    HIDDEN = "hidden"
    PAUSED = "paused"
    NO_PROGRESS = "no_progress"
    AHEAD_OF_FURTHEST = "ahead_of_furthest"
    TOO_FAST = "too_fast"
    CAPPED_INTERVAL = "capped_interval"
    LESSON_FULL = "lesson_full"
    INVALID_POSITION = "invalid_position"
    # A heartbeat whose sequence number is not newer than one already judged: a retry or a
    # duplicate the network delivered twice, or one overtaken by a later heartbeat.
    REPEATED = "repeated"
    # A face check waits for its answer: nothing is credited until it is answered.
    CHECK_PENDING = "check_pending"
    # The stretch was already credited in this session (a heartbeat that arrived out of order
    # without a sequence number, or the player went back over it): it is credited once.
    ALREADY_CREDITED = "already_credited"


@dataclass(frozen=True, slots=True)
class SessionState:
    """What the server remembers between heartbeats of one trainee on one lesson.

    `last_at` and `last_position_s` belong to the current session (None before its first
    heartbeat); `furthest_s` and `lesson_credited_s` carry over between sessions.
    """

    last_at: float | None
    last_position_s: float | None
    furthest_s: float
    lesson_credited_s: float
    duration_s: float
    # The previous heartbeat said the page was visible and the video playing, so the stretch
    # up to the next heartbeat was played: a pause or a hidden page ends it, it is still paid.
    last_active: bool = False
    # The newest sequence number judged in this session, when the client sends them.
    last_seq: int | None = None
    # When the session opened, on the server's clock: the player resumes at or before
    # `furthest_s` then, so the first heartbeat's position is judged against the time since.
    opened_at: float | None = None
    # The stretches of the lesson this session credited, merged: none is credited twice.
    credited_spans: tuple[Interval, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be finite and positive, not {self.duration_s!r}")
        for name in ("furthest_s", "lesson_credited_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and not negative, not {value!r}")
        if (self.last_at is None) != (self.last_position_s is None):
            raise ValueError("last_at and last_position_s are set together or not at all")
        if self.last_at is not None and not math.isfinite(self.last_at):
            raise ValueError(f"last_at must be finite, not {self.last_at!r}")
        if self.last_position_s is not None and not (
            math.isfinite(self.last_position_s) and self.last_position_s >= 0
        ):
            raise ValueError(f"last_position_s must be finite, not {self.last_position_s!r}")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One heartbeat: `at` is the server's receive time; the rest is what the client claims.

    `position_s` is deliberately not checked here: it is client input, and `credit` answers an
    unusable one with `Reason.INVALID_POSITION`.
    """

    at: float
    position_s: float
    hidden: bool
    playing: bool = True
    # The client's count of heartbeats in this session, if it sends one (see `credit`).
    seq: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.at):
            raise ValueError(f"at must be finite, not {self.at!r}")


@dataclass(frozen=True, slots=True)
class CreditResult:
    """`covered` is the stretch of the lesson verified as played on this heartbeat.

    It is at most one interval, never longer than the wall time, starts where the previous
    heartbeat was and lies within the lesson. It equals the credited stretch except when the
    heartbeat says hidden or paused, or the lesson's credit is full: payment wants the stricter
    evidence, while coverage only records what was played in time the server saw, so a trainee
    who paused, or rewatched up to the cap, can still complete the lesson.
    """

    credited_s: float
    new_state: SessionState
    covered: tuple[Interval, ...]
    reason: Reason | None


def credit(
    state: SessionState,
    beat: Heartbeat,
    *,
    heartbeat_s: float,
    skip_tolerance_s: float = SKIP_TOLERANCE_S,
) -> CreditResult:
    """Credit one heartbeat.

    The advance from the previous position counts for at most the wall time since the previous
    heartbeat and at most `CAP_HEARTBEATS` heartbeats, as the stretch starting at the previous
    position: running faster than 1x or skipping never covers the part run past. It counts only
    when it starts at most `skip_tolerance_s` beyond the furthest point reached, so a client that
    jumped ahead earns nothing from there on until it comes back. It is credited up to what is
    left of the lesson's duration, and only when the previous heartbeat said the page was
    visible and the video playing: the heartbeat that reports a pause or a hidden page is paid
    for the stretch before it, and nothing is paid after it until playing resumes. The first
    heartbeat of a session, and one after a gap of more than `GAP_HEARTBEATS` heartbeats (or a
    server clock that went back), only anchor the span. An invalid position is ignored
    entirely: the state is returned unchanged, and so is a heartbeat whose `seq` is not newer
    than the last one judged (`Reason.REPEATED`): without `seq` a duplicate still earns
    nothing, as it arrives with no wall time and no advance of its own.

    Heartbeats the network lost cost the trainee the time they covered and nothing more: a
    position reached no faster than real time from where the previous heartbeat was honestly
    (at most `skip_tolerance_s` past the furthest point) becomes the furthest point reached,
    though only the credited part of the way counts as watched. So the next heartbeat, after a
    gap or a capped interval, is credited as usual; skipping ahead is judged against what was
    watched, not against what the server happened to hear.

    `reason` is None when the position's advance was credited in full.
    """
    if not (math.isfinite(heartbeat_s) and heartbeat_s > 0):
        raise ValueError(f"heartbeat_s must be finite and positive, not {heartbeat_s!r}")
    if not (math.isfinite(skip_tolerance_s) and skip_tolerance_s >= 0):
        raise ValueError(
            f"skip_tolerance_s must be finite and not negative, not {skip_tolerance_s!r}"
        )

    if beat.seq is not None and state.last_seq is not None and beat.seq <= state.last_seq:
        return CreditResult(0.0, state, (), Reason.REPEATED)
    duration_s = state.duration_s
    if not _valid_position(beat.position_s, duration_s):
        return CreditResult(0.0, state, (), Reason.INVALID_POSITION)
    position_s = min(float(beat.position_s), duration_s)
    active = beat.playing and not beat.hidden
    anchored = replace(
        state,
        last_at=beat.at,
        last_position_s=position_s,
        last_active=active,
        last_seq=beat.seq if beat.seq is not None else state.last_seq,
    )

    if state.last_at is None or state.last_position_s is None:
        # Lost heartbeats at the start of a session cost their time too, and nothing more.
        since_open_s = beat.at - state.opened_at if state.opened_at is not None else 0.0
        if 0 <= position_s - state.furthest_s <= max(since_open_s, 0.0) + skip_tolerance_s:
            anchored = replace(anchored, furthest_s=max(state.furthest_s, position_s))
        return _nothing(anchored, Reason.FIRST_HEARTBEAT)
    wall_s = beat.at - state.last_at
    start_s = state.last_position_s
    advance_s = position_s - start_s
    honest = start_s <= state.furthest_s + skip_tolerance_s
    real_time = 0 <= advance_s <= max(wall_s, 0.0) + skip_tolerance_s
    if wall_s < 0 or wall_s > GAP_HEARTBEATS * heartbeat_s:
        if wall_s >= 0 and honest and real_time:
            anchored = replace(anchored, furthest_s=max(state.furthest_s, position_s))
        return _nothing(anchored, Reason.GAP)
    # A span is paid only when it began with the page visible and the video playing; the beat
    # that reports a pause or a hidden page closes such a span and is paid for it.
    refused = None if state.last_active else Reason.HIDDEN if beat.hidden else Reason.PAUSED

    if _floor_ms(advance_s) <= 0:
        return _nothing(anchored, refused or Reason.NO_PROGRESS)
    if not honest:
        return _nothing(anchored, refused or Reason.AHEAD_OF_FURTHEST)

    cap_s = CAP_HEARTBEATS * heartbeat_s
    watched_s = _floor_ms(min(advance_s, wall_s, cap_s))
    room_s = max(0.0, duration_s - state.lesson_credited_s)
    overlap_s = _overlap((start_s, start_s + watched_s), state.credited_spans)
    fresh_s = _floor_ms(watched_s - overlap_s) if overlap_s >= _MS else watched_s
    credited_s = 0.0 if refused else _floor_ms(min(fresh_s, room_s))

    reason = refused
    if refused is None:
        if credited_s < min(watched_s, room_s):
            reason = Reason.ALREADY_CREDITED
        elif credited_s < watched_s:
            reason = Reason.LESSON_FULL
        elif cap_s < min(advance_s, wall_s):
            reason = Reason.CAPPED_INTERVAL
        elif not real_time:
            reason = Reason.TOO_FAST

    covered: tuple[Interval, ...] = ()
    furthest_s = state.furthest_s
    if watched_s > 0:
        covered = ((start_s, start_s + watched_s),)
        furthest_s = max(furthest_s, start_s + watched_s)
    if real_time:
        furthest_s = max(furthest_s, position_s)
    lesson_credited_s = state.lesson_credited_s
    spans = state.credited_spans
    if credited_s > 0:
        lesson_credited_s = min(duration_s, lesson_credited_s + credited_s)
        spans = merge_intervals((*spans, (start_s, start_s + watched_s)))
    new_state = replace(
        anchored,
        furthest_s=furthest_s,
        lesson_credited_s=lesson_credited_s,
        credited_spans=spans,
    )
    return CreditResult(credited_s, new_state, covered, reason)


def _overlap(span: Interval, spans: tuple[Interval, ...]) -> float:
    """How much of ``span`` lies within the (merged) ``spans``."""
    low, high = span
    return sum(max(0.0, min(high, end) - max(low, start)) for start, end in spans)


def merge_intervals(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """The union of intervals, sorted; empty, reversed and non-finite ones are dropped."""
    clean = sorted(
        (float(start), float(end))
        for start, end in intervals
        if math.isfinite(start) and math.isfinite(end) and end > start
    )
    merged: list[Interval] = []
    for start, end in clean:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def bucket_count(duration_s: float) -> int:
    """How many buckets a lesson has.

    Buckets are `BUCKET_S` long; the tail forms a bucket of its own when it is at least half a
    bucket long and is otherwise added to the bucket before, so the last bucket is between 0.5
    and 1.5 buckets long. That keeps a player whose idea of the end differs from ours by a
    fraction of a second from being refused completion over a sliver of a bucket.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        return 0
    return max(1, math.floor(duration_s / BUCKET_S + 0.5))


def buckets_for(
    intervals: Iterable[Interval], duration_s: float, *, within: Interval | None = None
) -> set[int]:
    """The buckets watched, given every interval verified for the lesson so far.

    A bucket counts when the union of the intervals covers at least `BUCKET_MIN_FRACTION` of it.
    Pass all of the lesson's intervals (or their `merge_intervals`), not one heartbeat's: a
    heartbeat's stretch usually straddles two buckets. Watching the same seconds twice counts once.
    With `within`, only the buckets that stretch touches are judged (see `coverage_after`).
    """
    count = bucket_count(duration_s)
    if count == 0:
        return set()
    low_index, high_index = 0, count - 1
    if within is not None:
        low_index, high_index = _bucket_range(within, count, duration_s)
    seen: dict[int, float] = {}
    for start, end in merge_intervals(intervals):
        start, end = max(start, 0.0), min(end, duration_s)
        if end <= start:
            continue
        first, last = _bucket_range((start, end), count, duration_s)
        for index in range(max(first, low_index), min(last, high_index) + 1):
            low, high = _bucket_bounds(index, count, duration_s)
            overlap = min(end, high) - max(start, low)
            if overlap > 0:
                seen[index] = seen.get(index, 0.0) + overlap
    return {
        index
        for index, seconds in seen.items()
        if seconds >= BUCKET_MIN_FRACTION * _bucket_length(index, count, duration_s) - _EPSILON_S
    }


def coverage_after(
    coverage_before: float,
    before: Iterable[Interval],
    after: Iterable[Interval],
    span: Interval,
    duration_s: float,
) -> float:
    """`coverage(buckets_for(after))` where `after` is `before` plus the stretch `span`, from
    the coverage `before` had: only the buckets `span` touches can change, so only they are
    judged again (a heartbeat of a two-hour lesson judges two buckets, not 720).

    `coverage_before` must be what `coverage` gave for `before`: it is a whole number of
    buckets over the lesson's count, which this recovers exactly.
    """
    count = bucket_count(duration_s)
    if count == 0:
        return 0.0
    watched = round(coverage_before * count)
    watched -= len(buckets_for(before, duration_s, within=span))
    watched += len(buckets_for(after, duration_s, within=span))
    return min(max(watched, 0), count) / count


def coverage(buckets: set[int], duration_s: float) -> float:
    """The share of the lesson's buckets watched, from 0 to 1; the last bucket counts as one."""
    count = bucket_count(duration_s)
    if count == 0:
        return 0.0
    return len({index for index in buckets if 0 <= index < count}) / count


def is_complete(coverage: float, credited_s: float, duration_s: float) -> bool:
    """A lesson is complete when enough of it was watched and enough time was credited for it."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        return False
    return coverage >= COMPLETE_COVERAGE and credited_s >= COMPLETE_CREDIT * duration_s


def _nothing(new_state: SessionState, reason: Reason) -> CreditResult:
    return CreditResult(0.0, new_state, (), reason)


def _valid_position(position_s: float, duration_s: float) -> bool:
    return math.isfinite(position_s) and 0 <= position_s <= duration_s + END_TOLERANCE_S


def _floor_ms(seconds: float) -> float:
    """Round down to whole milliseconds, never above `seconds` and never below zero."""
    if not seconds > 0:
        return 0.0
    millis = math.floor(seconds * 1000)
    while millis > 0 and millis / 1000 > seconds:
        millis -= 1
    return millis / 1000


def _bucket_range(span: Interval, count: int, duration_s: float) -> tuple[int, int]:
    """The first and last bucket a stretch of the lesson can overlap."""
    start, end = max(span[0], 0.0), min(span[1], duration_s)
    return min(int(start // BUCKET_S), count - 1), min(int(end // BUCKET_S), count - 1)


def _bucket_bounds(index: int, count: int, duration_s: float) -> tuple[float, float]:
    low = float(index * BUCKET_S)
    high = duration_s if index == count - 1 else float((index + 1) * BUCKET_S)
    return low, high


def _bucket_length(index: int, count: int, duration_s: float) -> float:
    low, high = _bucket_bounds(index, count, duration_s)
    return high - low
