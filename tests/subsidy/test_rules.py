"""The subsidy rules on plain facts: every status, and what moves an enrolment between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.subsidy.rules import (
    AppealFact,
    CheckFact,
    DecisionFact,
    Facts,
    FlagFact,
    Status,
    assess,
)

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def check(id_, passed, code=None, minute=0, cleared_by=None) -> CheckFact:
    score = 0.7 if passed is False else 0.3
    return CheckFact(id_, 1, passed, code, score, "dlib", at(minute), cleared_by)


def facts(complete=True, **fields) -> Facts:
    return Facts(
        complete=complete,
        incomplete_lessons=[] if complete else [5],
        verified_s=600.0,
        sessions=[1],
        **fields,
    )


def codes(assessment) -> list[str]:
    return [reason.code for reason in assessment.reasons]


def test_complete_with_every_check_passed_is_eligible_without_anyone_deciding():
    result = assess(facts(checks=[check(1, True), check(2, True)]))
    assert result.status is Status.ELIGIBLE and result.decision_id is None
    assert codes(result) == ["complete", "checks_passed"]
    assert result.reasons[1].evidence == {"checks": [1, 2]}


def test_incomplete_and_clean_is_in_progress_and_a_waiting_check_is_not_a_signal():
    result = assess(facts(complete=False, checks=[check(1, True), check(2, None)]))
    assert result.status is Status.IN_PROGRESS
    assert result.reasons[0].evidence["lessons"] == [5]


def test_failed_check_needs_review_even_before_completion():
    result = assess(facts(complete=False, checks=[check(1, True), check(2, False, "mismatch")]))
    assert result.status is Status.NEEDS_REVIEW
    assert codes(result)[0] == "check_mismatch" and result.reasons[0].evidence["check"] == 2


def test_cleared_check_no_longer_holds_the_enrolment_back():
    result = assess(facts(checks=[check(1, False, "expired", cleared_by=9), check(2, True)]))
    assert result.status is Status.ELIGIBLE
    assert "check_cleared" in codes(result)


def test_open_and_confirmed_duplicate_flags_need_review_a_cleared_one_does_not():
    flag = FlagFact(3, "duplicate_identity", True, False, 0.31, "dlib", at(0))
    assert assess(facts(flags=[flag])).status is Status.NEEDS_REVIEW
    confirmed = FlagFact(3, "duplicate_identity", False, True, 0.31, "dlib", at(0))
    assert assess(facts(flags=[confirmed])).status is Status.NEEDS_REVIEW
    cleared = FlagFact(3, "duplicate_identity", False, False, 0.31, "dlib", at(0))
    assert assess(facts(flags=[cleared])).status is Status.ELIGIBLE
    # A look-alike may study on, but the money waits for an auditor's comparison.
    possible = FlagFact(
        4, "possible_duplicate", True, False, 0.47, "fr_feature-87aacdfe5751", at(0)
    )
    assert assess(facts(flags=[possible])).status is Status.NEEDS_REVIEW


def test_spot_check_holds_a_clean_completion_until_a_human_approves():
    drawn = facts(checks=[check(1, True)], spot_check=True)
    assert codes(assess(drawn))[0] == "spot_check"
    assert assess(drawn).status is Status.NEEDS_REVIEW
    approved = facts(
        checks=[check(1, True)],
        spot_check=True,
        decisions=[DecisionFact(4, "approve", at(10), "ok")],
    )
    result = assess(approved)
    assert result.status is Status.ELIGIBLE and result.decision_id == 4


def test_only_a_rejection_makes_an_enrolment_ineligible_and_an_appeal_reopens_it():
    rejection = DecisionFact(7, "reject", at(10), "someone else studied")
    result = assess(facts(checks=[check(1, False, "mismatch")], decisions=[rejection]))
    assert result.status is Status.INELIGIBLE and codes(result) == ["rejected"]
    appealed = facts(
        checks=[check(1, False, "mismatch")],
        decisions=[rejection],
        appeals=[AppealFact(2, 7, at(20))],
    )
    result = assess(appealed)
    assert result.status is Status.NEEDS_REVIEW
    assert codes(result)[:2] == ["appealed", "check_mismatch"]


def test_approval_covers_earlier_evidence_but_a_later_failure_reopens_review():
    approval = DecisionFact(4, "approve", at(10), "checked by phone")
    earlier = facts(checks=[check(1, False, "mismatch", minute=5)], decisions=[approval])
    assert assess(earlier).status is Status.ELIGIBLE
    later = facts(
        checks=[check(1, False, "mismatch", minute=5), check(2, False, "replay", minute=15)],
        decisions=[approval],
    )
    result = assess(later)
    assert result.status is Status.NEEDS_REVIEW and codes(result)[0] == "check_replay"


def test_deliberate_fraud_outranks_a_missed_check_in_the_queue():
    missed = assess(facts(checks=[check(1, False, "expired")]))
    replayed = assess(facts(checks=[check(1, False, "replay")]))
    duplicate = assess(
        facts(flags=[FlagFact(3, "duplicate_identity", True, False, 0.3, "dlib", at(0))])
    )
    assert duplicate.risk > replayed.risk > missed.risk > 0


def test_with_four_eyes_a_rejection_stands_only_when_a_second_auditor_rejects_too():
    first = DecisionFact(7, "reject", at(10), "stand-in", by=1)
    proposed = assess(facts(decisions=[first], second_auditor=True))
    assert proposed.status is Status.NEEDS_REVIEW
    assert codes(proposed)[0] == "rejection_proposed" and proposed.risk >= 90
    again = DecisionFact(8, "reject", at(11), "still", by=1)
    assert assess(facts(decisions=[first, again], second_auditor=True)).status is (
        Status.NEEDS_REVIEW
    )
    confirmed = DecisionFact(9, "reject", at(12), "agreed", by=2)
    result = assess(facts(decisions=[first, confirmed], second_auditor=True))
    assert result.status is Status.INELIGIBLE and result.decision_id == 9
    overruled = DecisionFact(9, "approve", at(12), "it was the trainee", by=2)
    assert assess(facts(decisions=[first, overruled], second_auditor=True)).status is (
        Status.ELIGIBLE
    )
