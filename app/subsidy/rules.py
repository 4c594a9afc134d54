"""The subsidy rules: from the facts on record to a status with reasons and a risk score.

Pure functions over plain data, so every rule can be tested on its own. The service gathers
the facts (app/subsidy/service.py); nothing here reads the database.

- `eligible`: every lesson complete on verified time, and every face check passed or cleared
  by an auditor, or an auditor approved the enrolment.
- `needs_review`: a failed or missed check, a duplicate-identity flag, an appeal or a random
  spot check waits for a human.
- `ineligible`: only ever an auditor's rejection (confirmed by a second auditor where
  REJECTION_NEEDS_SECOND_AUDITOR asks for four eyes). The machine never refuses money itself.
- `in_progress`: otherwise.

An approval covers the evidence before it; a risk signal recorded after it (a later failed
check, a new flag) sends the enrolment back to review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    IN_PROGRESS = "in_progress"
    ELIGIBLE = "eligible"
    NEEDS_REVIEW = "needs_review"
    INELIGIBLE = "ineligible"


# How much each signal raises an enrolment in the auditors' queue. Someone else's face and a
# replayed picture are deliberate; a missed check is usually a closed tab.
RISK = {
    "duplicate_identity": 100,
    "possible_duplicate": 45,
    "check_replay": 80,
    "check_mismatch": 60,
    "check_liveness_failed": 50,
    "check_multiple_faces": 40,
    "rejection_proposed": 90,
    "appealed": 30,
    "check_no_face": 20,
    "check_expired": 10,
    "spot_check": 5,
    "skipped_ahead": 5,
}


@dataclass(frozen=True)
class CheckFact:
    id: int
    session_id: int
    passed: bool | None  # None while it waits for an answer
    code: str | None
    score: float | None  # in the terms of `model`
    model: str | None
    at: datetime
    cleared_by: int | None = None  # the clearing decision


@dataclass(frozen=True)
class FlagFact:
    id: int
    code: str  # duplicate_identity, possible_duplicate
    open: bool
    confirmed: bool
    score: float | None  # in the terms of `model`
    model: str | None
    at: datetime


@dataclass(frozen=True)
class DecisionFact:
    id: int
    action: str  # approve, reject, clear_check, eligible
    at: datetime
    reason: str
    by: int | None = None  # the auditor; None for the rules' own


@dataclass(frozen=True)
class AppealFact:
    id: int
    rejection_id: int
    at: datetime


@dataclass
class Facts:
    complete: bool
    incomplete_lessons: list[int]
    verified_s: float
    sessions: list[int]
    checks: list[CheckFact] = field(default_factory=list)
    flags: list[FlagFact] = field(default_factory=list)
    decisions: list[DecisionFact] = field(default_factory=list)
    appeals: list[AppealFact] = field(default_factory=list)
    spot_check: bool = False
    skipped_sessions: list[int] = field(default_factory=list)
    # A rejection stands only once a second auditor rejects too (REJECTION_NEEDS_SECOND_AUDITOR).
    second_auditor: bool = False


@dataclass(frozen=True)
class Reason:
    code: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Assessment:
    status: Status
    reasons: list[Reason]
    risk: int
    # The human decision the status rests on (approve or reject), if any.
    decision_id: int | None = None
    # What asks for a human (failed checks, flags, an appeal, a proposed rejection...).
    signals: tuple[str, ...] = ()


def _signals(facts: Facts, since: datetime | None) -> list[Reason]:
    """What asks for a human, recorded after `since` (the approval that covered earlier ones)."""
    signals = []
    for check in facts.checks:
        if check.passed is False and check.cleared_by is None and _after(check.at, since):
            evidence = {
                "check": check.id,
                "session": check.session_id,
                "at": check.at.isoformat(),
                "code": check.code,
                "score": check.score,
                "model": check.model,
            }
            signals.append(Reason(f"check_{check.code}", evidence))
    for flag in facts.flags:
        if (flag.open or flag.confirmed) and _after(flag.at, since):
            evidence = {
                "flag": flag.id,
                "score": flag.score,
                "model": flag.model,
                "confirmed": flag.confirmed,
            }
            signals.append(Reason(flag.code, evidence))
    return signals


def _after(moment: datetime, since: datetime | None) -> bool:
    return since is None or moment > since


def _verdict(facts: Facts) -> tuple[DecisionFact | None, DecisionFact | None]:
    """The approval or rejection that stands, and a rejection waiting for a second auditor.

    An approval always stands. Where rejections need four eyes, a rejection stands only when
    an auditor other than its proposer rejects after it; until then it is only proposed.
    """
    verdict = proposed = None
    decisions = [d for d in facts.decisions if d.action in ("approve", "reject")]
    for decision in sorted(decisions, key=lambda d: (d.at, d.id)):
        stands = (
            decision.action == "approve"
            or not facts.second_auditor
            or (proposed is not None and proposed.by != decision.by)
        )
        if stands:
            verdict, proposed = decision, None
        else:
            proposed = decision
    return verdict, proposed


def _progress_reasons(facts: Facts) -> list[Reason]:
    reasons = []
    if facts.complete:
        evidence = {"verified_s": facts.verified_s, "sessions": facts.sessions}
        reasons.append(Reason("complete", evidence))
    else:
        evidence = {"lessons": facts.incomplete_lessons, "verified_s": facts.verified_s}
        reasons.append(Reason("lessons_incomplete", evidence))
    cleared = [c for c in facts.checks if c.passed is False and c.cleared_by is not None]
    passed = [c.id for c in facts.checks if c.passed]
    if passed:
        reasons.append(Reason("checks_passed", {"checks": passed}))
    for check in cleared:
        evidence = {"check": check.id, "at": check.at.isoformat(), "decision": check.cleared_by}
        reasons.append(Reason("check_cleared", evidence))
    if facts.skipped_sessions:
        reasons.append(Reason("skipped_ahead", {"sessions": facts.skipped_sessions}))
    return reasons


def assess(facts: Facts) -> Assessment:
    verdict, proposed = _verdict(facts)
    appeal = None
    if verdict is not None and verdict.action == "reject":
        appeal = next((a for a in facts.appeals if a.rejection_id == verdict.id), None)
        if appeal is None:
            reasons = [Reason("rejected", {"decision": verdict.id})]
            return Assessment(Status.INELIGIBLE, reasons, 0, verdict.id)
    approved = verdict if verdict is not None and verdict.action == "approve" else None
    signals = _signals(facts, approved.at if approved else None)
    if appeal is not None:
        signals.insert(
            0, Reason("appealed", {"appeal": appeal.id, "decision": appeal.rejection_id})
        )
    elif approved is None and facts.complete and not signals and facts.spot_check:
        signals.append(Reason("spot_check", {}))
    if proposed is not None:
        signals.insert(0, Reason("rejection_proposed", {"decision": proposed.id}))
    progress = _progress_reasons(facts)
    risk = sum(RISK.get(reason.code, 0) for reason in signals + progress)
    if signals:
        codes = tuple(reason.code for reason in signals)
        return Assessment(Status.NEEDS_REVIEW, signals + progress, risk, signals=codes)
    if approved is not None:
        reasons = [Reason("approved", {"decision": approved.id}), *progress]
        return Assessment(Status.ELIGIBLE, reasons, risk, approved.id)
    if facts.complete:
        return Assessment(Status.ELIGIBLE, progress, risk)
    return Assessment(Status.IN_PROGRESS, progress, risk)
