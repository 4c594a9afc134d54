"""Crediting under a weak network: random heartbeat streams with drops, duplicates, reordering.

An honest player at 1x sends a heartbeat every HEARTBEAT_S seconds with a growing sequence
number; the network drops some, delivers some twice and lets some overtake the one before.
Whatever it does, the server credits no more than the wall time, the playhead's advance and
the lesson's length, never counts a heartbeat twice, and an honest stream that loses
heartbeats loses at most the gaps they leave.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from app.learning.rules import (
    CAP_HEARTBEATS,
    GAP_HEARTBEATS,
    Heartbeat,
    Reason,
    SessionState,
    credit,
)

HEARTBEAT_S = 15.0
START_AT = 2_000_000.0
FATES = ("ok", "drop", "twice", "overtaken")


@dataclass(frozen=True)
class Sent:
    seq: int
    sent_at: float
    position_s: float


def honest_stream(count: int, offset_s: float) -> list[Sent]:
    return [
        Sent(seq, START_AT + seq * HEARTBEAT_S, offset_s + seq * HEARTBEAT_S)
        for seq in range(count)
    ]


def delivered(sent: list[Sent], fates: list[str], latency_s: float) -> list[tuple[float, Sent]]:
    """(arrival time, heartbeat) in arrival order: dropped ones never arrive, doubled ones
    arrive again a moment later, overtaken ones arrive just after their successor."""
    arrivals: list[tuple[float, Sent]] = []
    for index, (each, fate) in enumerate(zip(sent, fates, strict=True)):
        at = each.sent_at + latency_s
        if fate == "drop":
            continue
        successor = fates[index + 1] if index + 1 < len(fates) else None
        if fate == "overtaken" and successor in ("ok", "twice"):
            at += HEARTBEAT_S + 0.5  # after the next one, which left HEARTBEAT_S later
        arrivals.append((at, each))
        if fate == "twice":
            arrivals.append((at + 0.05, each))
    return sorted(arrivals, key=lambda item: item[0])


def run(duration_s: float, arrivals: list[tuple[float, Sent]], *, with_seq: bool):
    """The server's side: a session opened at START_AT (where the player starts, at 0 s)."""
    state = SessionState(
        last_at=None,
        last_position_s=None,
        furthest_s=0.0,
        lesson_credited_s=0.0,
        duration_s=duration_s,
        opened_at=START_AT,
    )
    results = []
    for at, each in arrivals:
        beat = Heartbeat(
            at=at,
            position_s=min(each.position_s, duration_s),
            hidden=False,
            playing=True,
            seq=each.seq if with_seq else None,
        )
        result = credit(state, beat, heartbeat_s=HEARTBEAT_S)
        results.append((at, each, result))
        state = result.new_state
    return state, results


streams = st.integers(min_value=2, max_value=40).flatmap(
    lambda count: st.tuples(
        st.just(count),
        st.lists(st.sampled_from(FATES), min_size=count, max_size=count),
        st.floats(min_value=0.0, max_value=2.0),  # one-way latency
        st.sampled_from([60.0, 300.0, 2000.0]),  # lesson length
    )
)


@settings(max_examples=300, deadline=None)
@given(streams, st.booleans())
def test_credit_never_exceeds_wall_time_advance_or_length(stream, with_seq):
    count, fates, latency_s, duration_s = stream
    arrivals = delivered(honest_stream(count, 0.0), fates, latency_s)
    if not arrivals:
        return
    state, results = run(duration_s, arrivals, with_seq=with_seq)

    total = sum(result.credited_s for _, _, result in results)
    wall_span = arrivals[-1][0] - arrivals[0][0]
    positions = [min(each.position_s, duration_s) for _, each in arrivals]
    assert total <= wall_span + 1e-6
    assert total <= max(positions) - min(positions) + 1e-6
    assert total <= duration_s + 1e-6
    assert state.lesson_credited_s <= duration_s


@settings(max_examples=300, deadline=None)
@given(streams)
def test_duplicates_and_overtaken_heartbeats_are_never_credited(stream):
    count, fates, latency_s, duration_s = stream
    sent = honest_stream(count, 0.0)
    _, results = run(duration_s, delivered(sent, fates, latency_s), with_seq=True)

    credited_seqs = [each.seq for _, each, result in results if result.credited_s > 0]
    assert len(credited_seqs) == len(set(credited_seqs))
    for _, _each, result in results:
        if result.reason is Reason.REPEATED:
            assert result.credited_s == 0
    # The network's doubles change nothing: the same stream delivered once earns the same.
    once = [fate if fate != "twice" else "ok" for fate in fates]
    _, plain = run(duration_s, delivered(sent, once, latency_s), with_seq=True)
    assert sum(r.credited_s for _, _, r in results) == sum(r.credited_s for _, _, r in plain)


@settings(max_examples=300, deadline=None)
@given(streams)
def test_honest_stream_loses_at_most_the_gaps_of_what_the_network_lost(stream):
    count, fates, latency_s, duration_s = stream
    duration_s = max(duration_s, count * HEARTBEAT_S)  # the lesson's length caps nothing here
    sent = honest_stream(count, 0.0)
    _, results = run(duration_s, delivered(sent, fates, latency_s), with_seq=True)
    judged = [(at, each) for at, each, result in results if result.reason is not Reason.REPEATED]
    if len(judged) < 2:
        return

    total = sum(result.credited_s for _, _, result in results)
    played = judged[-1][1].position_s - judged[0][1].position_s
    # The gap around lost (or overtaken, hence ignored) heartbeats: between the two judged
    # heartbeats on either side, as the player's clock measured it.
    gaps = sum(
        later.sent_at - earlier.sent_at
        for (_, earlier), (_, later) in itertools.pairwise(judged)
        if later.seq > earlier.seq + 1
    )
    assert played - total <= gaps + 1e-6
    # And exactly what the rules promise: a single lost heartbeat costs the part of its
    # two-heartbeat gap past the cap, more than one costs the whole gap.
    expected = 0.0
    for (_, earlier), (_, later) in itertools.pairwise(judged):
        span = later.sent_at - earlier.sent_at
        if span > GAP_HEARTBEATS * HEARTBEAT_S:
            continue
        expected += min(span, CAP_HEARTBEATS * HEARTBEAT_S)
    assert abs(total - expected) < 1e-6
