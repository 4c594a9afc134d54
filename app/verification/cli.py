"""`flask faces compare|calibrate|reencode` and `flask evidence purge`: tools for operators.

``compare`` runs the face engine on files, as a check would, for support staff and scripts.
``calibrate`` measures the configured model's match threshold against the enrolled faces.
``reencode`` moves every reference to the configured model. ``purge`` removes face images past
their retention date; the rows stay, so what was decided remains on record. Scores and
thresholds are in the configured model's terms (a distance for dlib: lower is closer; a cosine
similarity for ONNX models: higher is closer).
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from app.audit import service as audit
from app.cli import click_error
from app.db import utcnow
from app.errors import AppError
from app.extensions import db
from app.jobs import schedule
from app.study import workflow
from app.verification import bp, service
from app.verification.models import (
    Check,
    CheckStatus,
    Evidence,
    FaceReference,
    FaceStatus,
    FlagStatus,
    IdentityFlag,
    PurgeRun,
)
from media_pipeline.limits import MAX_IMAGE_BYTES

bp.cli.short_help = "Compare face photos and calibrate the match threshold."

evidence_cli = AppGroup("evidence", help="Retained face images.")

EXIT_MATCH = 0
EXIT_NO_MATCH = 1
EXIT_UNUSABLE = 2
# Impostor pairs grow with the square of the references: a sample this size gives ~2 million
# pairs, enough to measure false accepts down to 1e-6, in a few seconds.
CALIBRATE_MAX_REFERENCES = 2000
# The references whose photo a person may still need: the one checks are judged against, and
# a re-enrolment staff have yet to compare with it.
KEPT_REFERENCE_STATUSES = (FaceStatus.ACTIVE, FaceStatus.PENDING_APPROVAL)


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Face:
    """One input file, analysed as a check: its encoding, or why it is unusable."""

    encoding: Any | None
    code: str | None = None
    message: str = ""


class FaceCache:
    """Analyses each file once, however many pairs name it."""

    def __init__(self) -> None:
        self.engine = service.faces()
        self.model = service.model()
        self.seen: dict[Path, Face] = {}

    def get(self, path: Path) -> Face:
        path = path.resolve()
        if path not in self.seen:
            self.seen[path] = self._analyse(path)
        return self.seen[path]

    def _analyse(self, path: Path) -> Face:
        engine = self.engine
        with path.open("rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)  # one byte over is enough to refuse it
        try:
            rgb = engine.decode_image(data, max_bytes=MAX_IMAGE_BYTES)
            analysis = engine.analyze(rgb, purpose="check", model=self.model)
        except engine.FaceError as error:
            return Face(None, error.code, error.message)
        return Face(analysis.encoding)


def compare_pair(cache: FaceCache, ref: Path, probe: Path, limit: float) -> dict[str, Any]:
    """The verdict on one pair as printed; unusable inputs are explained on stderr.

    ``score`` and ``threshold`` are in the model's terms; ``distance`` repeats the score for
    dlib, whose score is one (and is null for other models)."""
    model = cache.model
    verdict: dict[str, Any] = {"match": False, "model": model.name, "score": None}
    if model.metric == "distance":
        verdict["distance"] = None
    verdict["threshold"] = limit
    for role, path in (("ref", ref), ("probe", probe)):
        face = cache.get(path)
        if face.encoding is None:
            click.echo(f"{role} {path}: {face.code}: {face.message}", err=True)
            return {**verdict, "code": face.code}
    score = round(model.score(cache.get(ref).encoding, cache.get(probe).encoding), 4)
    matched = model.accepts(score, limit)
    verdict.update(match=matched, score=score, code="match" if matched else "no_match")
    if model.metric == "distance":
        verdict["distance"] = score
    return verdict


def read_pairs(pairs_file: Path) -> list[tuple[Path, Path]]:
    """``REF<TAB>PROBE`` lines; relative paths are taken from the file's folder."""
    base = pairs_file.parent
    pairs = []
    try:
        text = pairs_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(
            f"cannot read {pairs_file}: {error}", param_hint="--pairs"
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [field.strip() for field in stripped.split("\t")]
        if len(fields) != 2 or not all(fields):
            raise click.BadParameter(
                f"line {number}: expected REF<TAB>PROBE, got {stripped!r}", param_hint="--pairs"
            )
        paths = [(base / field) for field in fields]
        for path in paths:
            if not path.is_file():
                raise click.BadParameter(
                    f"line {number}: no such file {path}", param_hint="--pairs"
                )
            if not os.access(path, os.R_OK):
                raise click.BadParameter(f"line {number}: cannot read {path}", param_hint="--pairs")
        pairs.append((paths[0], paths[1]))
    if not pairs:
        raise click.BadParameter(f"{pairs_file} lists no pairs", param_hint="--pairs")
    return pairs


FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


@bp.cli.command("compare")
@click.argument("ref", required=False, type=FILE)
@click.argument("probe", required=False, type=FILE)
@click.option(
    "--pairs",
    "pairs_file",
    type=FILE,
    help="A file of REF<TAB>PROBE lines (paths relative to its folder; # comments).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(-1.0, 2.0, min_open=True, max_open=True),
    help="The model's threshold for the same person (a distance for dlib, at most; a "
    "similarity for ONNX models, at least).  [default: FACE_THRESHOLD]",
)
@click.pass_context
def compare(
    ctx: click.Context,
    ref: Path | None,
    probe: Path | None,
    pairs_file: Path | None,
    threshold: float | None,
) -> None:
    """Is the face in PROBE the person in REF? One JSON line per pair on stdout.

    Both photos are analysed as a face check is (exactly one face each). Exit status: 0 match,
    1 no match, 2 an input was unusable (not an image, no face, several faces). With --pairs:
    0 when every pair was usable, 2 otherwise.
    """
    if pairs_file is not None and (ref or probe):
        raise click.UsageError("give either REF and PROBE, or --pairs FILE, not both")
    if pairs_file is None and (ref is None or probe is None):
        raise click.UsageError("give REF and PROBE, or --pairs FILE")
    if threshold is not None:
        try:
            service.model().check_threshold(threshold)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--threshold") from None
    limit = threshold if threshold is not None else service.threshold()
    if pairs_file is not None:
        pairs = read_pairs(pairs_file)
        cache = FaceCache()
        unusable = False
        for pair_ref, pair_probe in pairs:
            verdict = compare_pair(cache, pair_ref, pair_probe, limit)
            unusable = unusable or verdict["score"] is None
            click.echo(_dumps({"ref": str(pair_ref), "probe": str(pair_probe), **verdict}))
        ctx.exit(EXIT_UNUSABLE if unusable else 0)
    assert ref is not None and probe is not None
    verdict = compare_pair(FaceCache(), ref, probe, limit)
    click.echo(_dumps(verdict))
    if verdict["score"] is None:
        ctx.exit(EXIT_UNUSABLE)
    ctx.exit(EXIT_MATCH if verdict["match"] else EXIT_NO_MATCH)


# --------------------------------------------------------------------------- calibrate


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default) over sorted values."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def suggest_threshold(impostor: Sequence[float], target_far: float) -> float | None:
    """The largest threshold (to 3 decimals) at which at most ``target_far`` of the impostor
    pairs would be accepted (distance <= threshold), or None without impostor pairs. Works on
    distances; ``calibration`` turns similarities into them and back."""
    ordered = sorted(impostor)
    if not ordered:
        return None
    allowed = math.floor(target_far * len(ordered) + 1e-9)
    if allowed >= len(ordered):
        return None
    first_refused = ordered[allowed]
    suggestion = math.floor(first_refused * 1000) / 1000
    if suggestion >= first_refused:  # accepted at <=: stay strictly below it
        suggestion = round(suggestion - 0.001, 3)
    return suggestion if suggestion > 0 else None


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def calibration(
    impostor: Sequence[float],
    genuine: Sequence[float],
    mismatch: Sequence[float],
    *,
    threshold: float,
    target_far: float,
    metric: str = "distance",
) -> dict[str, Any]:
    """Error rates at ``threshold`` and a suggested threshold, from scores alone.

    Scores are the model's (``metric``): a similarity s is worked on as the distance 1 - s
    and turned back, so everything is ordered from the most alike; "closest" is the smallest
    distance or the largest similarity."""
    if metric == "distance":
        result = _calibration(
            impostor, genuine, mismatch, threshold=threshold, target_far=target_far
        )
        return {"metric": metric, **result}
    result = _calibration(
        [1.0 - value for value in impostor],
        [1.0 - value for value in genuine],
        [1.0 - value for value in mismatch],
        threshold=1.0 - threshold,
        target_far=target_far,
    )
    result["threshold"] = threshold
    for part in ("impostor", "genuine", "mismatch"):
        for key in ("closest", "p1", "p5", "median", "p95", "farthest"):
            if result[part].get(key) is not None:
                result[part][key] = round(1.0 - result[part][key], 4)
    if result["suggested_threshold"] is not None:
        result["suggested_threshold"] = round(1.0 - result["suggested_threshold"], 3)
    return {"metric": metric, **result}


def _calibration(
    impostor: Sequence[float],
    genuine: Sequence[float],
    mismatch: Sequence[float],
    *,
    threshold: float,
    target_far: float,
) -> dict[str, Any]:
    impostor = sorted(impostor)
    genuine = sorted(genuine)
    mismatch = sorted(mismatch)
    accepted = sum(1 for value in impostor if value <= threshold)
    rejected = sum(1 for value in genuine if value > threshold)
    suggested = suggest_threshold(impostor, target_far)
    needed = math.ceil(1 / target_far)
    notes = []
    if impostor and len(impostor) < needed:
        notes.append(
            f"{len(impostor)} impostor pairs cannot show a false-accept rate of {target_far:g} "
            f"(that needs at least {needed}); the suggestion only lies below the closest "
            "impostor pairs seen, and the real rate at it is unknown"
        )
    if not impostor:
        notes.append("no impostor pairs: at least two trainees need an active reference")
    at_suggested: dict[str, Any] = {}
    if suggested is not None:
        at_suggested = {
            "false_accepts": sum(1 for value in impostor if value <= suggested),
            "false_rejects": sum(1 for value in genuine if value > suggested),
            "mismatches_accepted": sum(1 for value in mismatch if value <= suggested),
        }
    return {
        "threshold": threshold,
        "target_far": target_far,
        "impostor": {
            "count": len(impostor),
            "closest": _rounded(impostor[0] if impostor else None),
            "p1": _rounded(quantile(impostor, 0.01)),
            "p5": _rounded(quantile(impostor, 0.05)),
            "median": _rounded(quantile(impostor, 0.5)),
            "false_accepts": accepted,
            "far": _rate(accepted, len(impostor)),
        },
        "genuine": {
            "count": len(genuine),
            "median": _rounded(quantile(genuine, 0.5)),
            "p95": _rounded(quantile(genuine, 0.95)),
            "farthest": _rounded(genuine[-1] if genuine else None),
            "false_rejects": rejected,
            "frr": _rate(rejected, len(genuine)),
        },
        "mismatch": {
            "count": len(mismatch),
            "closest": _rounded(mismatch[0] if mismatch else None),
            "median": _rounded(quantile(mismatch, 0.5)),
            "farthest": _rounded(mismatch[-1] if mismatch else None),
            # Unlabelled: some are other people, some false rejects. Counting them all as the
            # trainee gives the worst the false-reject rate can be.
            "frr_if_all_genuine": _rate(
                rejected + sum(1 for value in mismatch if value > threshold),
                len(genuine) + len(mismatch),
            ),
        },
        "suggested_threshold": suggested,
        "supported": bool(impostor) and len(impostor) >= needed,
        "at_suggested": at_suggested,
        "notes": notes,
    }


def _reference_sample(max_references: int, model: Any) -> tuple[list[FaceReference], int]:
    ids = list(
        db.session.scalars(
            sa.select(FaceReference.id)
            .where(FaceReference.status == FaceStatus.ACTIVE, FaceReference.model == model.name)
            .order_by(FaceReference.id)
        )
    )
    total = len(ids)
    if total > max_references:
        ids = sorted(random.Random(0).sample(ids, max_references))  # noqa: S311 - not secret
    references: list[FaceReference] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        references.extend(
            db.session.scalars(sa.select(FaceReference).where(FaceReference.id.in_(chunk)))
        )
    return references, total


def _same_person_pairs() -> set[frozenset[int]]:
    """Accounts staff confirmed as one person: their pair is no impostor."""
    rows = db.session.execute(
        sa.select(IdentityFlag.user_id, IdentityFlag.other_user_id).where(
            IdentityFlag.status == FlagStatus.CONFIRMED, IdentityFlag.other_user_id.is_not(None)
        )
    )
    return {frozenset((first, second)) for first, second in rows if second is not None}


def _impostor_scores(references: Sequence[FaceReference], model: Any) -> list[float]:
    import numpy as np

    if len(references) < 2:
        return []
    matrix = np.stack([service.reference_encoding(reference)[1] for reference in references])
    users = [reference.user_id for reference in references]
    same_person = _same_person_pairs()
    scores: list[float] = []
    for index in range(len(references) - 1):
        row = model.scores(matrix[index + 1 :], matrix[index])
        for offset, value in enumerate(row.tolist()):
            other = users[index + 1 + offset]
            if other != users[index] and frozenset((users[index], other)) not in same_person:
                scores.append(value)
    return scores


def _check_scores(user_ids: Sequence[int], model: Any) -> tuple[list[float], list[float]]:
    """Recorded scores of these trainees' checks judged by ``model``: passed, and failed as a
    mismatch."""
    genuine: list[float] = []
    mismatch: list[float] = []
    for start in range(0, len(user_ids), 500):
        rows = db.session.execute(
            sa.select(Check.status, Check.score).where(
                Check.user_id.in_(user_ids[start : start + 500]),
                Check.model == model.name,
                Check.score.is_not(None),
                sa.or_(
                    Check.status == CheckStatus.PASSED,
                    sa.and_(Check.status == CheckStatus.FAILED, Check.code == "mismatch"),
                ),
            )
        )
        for status, distance in rows:
            assert distance is not None  # selected where the score is not null
            (genuine if status is CheckStatus.PASSED else mismatch).append(float(distance))
    return genuine, mismatch


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _share(count: int, total: int) -> str:
    return f"{count}/{total} ({count / total:.2%})" if total else "- (no pairs)"


def _report_lines(result: dict[str, Any]) -> list[str]:
    limit = result["threshold"]
    impostor, genuine, mismatch = result["impostor"], result["genuine"], result["mismatch"]
    sample = ""
    if result["references"] < result["active_references"]:
        sample = f", a sample of {result['references']}"
    lines = [
        f"face calibration of {result['model']} ({result['metric']}: "
        f"{'lower' if result['metric'] == 'distance' else 'higher'} is more alike): "
        f"{result['active_references']} active references{sample} "
        f"({result['trainees']} trainees); current threshold {limit:.3f}",
        f"impostor pairs (references of different trainees): {impostor['count']}",
        f"  closest {_fmt(impostor['closest'])}  1% {_fmt(impostor['p1'])}  "
        f"5% {_fmt(impostor['p5'])}  median {_fmt(impostor['median'])}",
        f"  false accepts at {limit:.3f}: {_share(impostor['false_accepts'], impostor['count'])}",
        f"genuine scores (passed checks against their reference): {genuine['count']}",
        f"  median {_fmt(genuine['median'])}  95% {_fmt(genuine['p95'])}  "
        f"farthest {_fmt(genuine['farthest'])}",
        f"  false rejects at {limit:.3f}: {_share(genuine['false_rejects'], genuine['count'])}"
        + (
            "  (passed under the threshold of the day: 0 unless it was lowered since)"
            if genuine["count"]
            else ""
        ),
        f"checks failed as a mismatch (unlabelled: other people or false rejects): "
        f"{mismatch['count']}",
    ]
    if mismatch["count"]:
        worst = mismatch["frr_if_all_genuine"]
        lines += [
            f"  closest {_fmt(mismatch['closest'])}  median {_fmt(mismatch['median'])}  "
            f"farthest {_fmt(mismatch['farthest'])}",
            f"  false rejects at {limit:.3f} if all were the trainee: {worst:.2%}",
        ]
    suggested = result["suggested_threshold"]
    target = f"false accepts <= {result['target_far']:g}"
    if suggested is None:
        lines.append(f"suggested threshold for {target}: none (no impostor pairs to measure)")
    else:
        at = result["at_suggested"]
        lines += [
            f"suggested threshold for {target}: {suggested:.3f}",
            f"  at {suggested:.3f}: false accepts {_share(at['false_accepts'], impostor['count'])}"
            f", false rejects {_share(at['false_rejects'], genuine['count'])}"
            f", mismatches it would accept {at['mismatches_accepted']}/{mismatch['count']}",
        ]
    lines.append(
        "  (impostor pairs are enrolment photos; webcam checks are poorer, so real impostor "
        "scores may lie further from the threshold)"
    )
    lines += [f"note: {note}" for note in result["notes"]]
    return lines


@bp.cli.command("calibrate")
@click.option(
    "--target-far",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.001,
    show_default=True,
    help="Largest share of impostor pairs the suggested threshold may accept.",
)
@click.option(
    "--max-references",
    type=click.IntRange(min=2),
    default=CALIBRATE_MAX_REFERENCES,
    show_default=True,
    help="Sample this many active references (impostor pairs grow with their square).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def calibrate(target_far: float, max_references: int, as_json: bool) -> None:
    """Measure the configured model's match threshold on the enrolled faces and suggest one.

    Impostor scores: every pair of active references of different trainees encoded by the
    configured model (no labels needed: one person, one account). Genuine scores: the scores
    recorded on the trainees' passed checks judged by that model; checks failed as a mismatch
    are reported apart, since some are other people and some the trainee rejected.
    """
    model = service.model()
    references, total = _reference_sample(max_references, model)
    users = sorted({reference.user_id for reference in references})
    genuine, mismatch = _check_scores(users, model)
    result = calibration(
        _impostor_scores(references, model),
        genuine,
        mismatch,
        threshold=service.threshold(),
        target_far=target_far,
        metric=model.metric,
    )
    result = {
        "model": model.name,
        "active_references": total,
        "references": len(references),
        "trainees": len(users),
        **result,
    }
    if as_json:
        click.echo(_dumps(result))
        return
    for line in _report_lines(result):
        click.echo(line)


# --------------------------------------------------------------------------- purge


@dataclass(frozen=True)
class PurgePlan:
    due: list[Evidence]
    kept: int

    def by_kind(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for evidence in self.due:
            counts[evidence.kind.value] += 1
        return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items())) or "none"


def purge_plan(now: datetime) -> PurgePlan:
    """Evidence past its retention date and not yet purged, less the photos of references a
    trainee is still judged against (or waiting to be)."""
    kept_ids = sa.select(FaceReference.evidence_id).where(
        FaceReference.status.in_(KEPT_REFERENCE_STATUSES)
    )
    expired = sa.and_(Evidence.purge_after < now, Evidence.purged_at.is_(None))
    due = list(
        db.session.scalars(
            sa.select(Evidence).where(expired, Evidence.id.not_in(kept_ids)).order_by(Evidence.id)
        )
    )
    kept = db.session.scalar(
        sa.select(sa.func.count()).select_from(Evidence).where(expired, Evidence.id.in_(kept_ids))
    )
    return PurgePlan(due, int(kept or 0))


def purge_expired(*, by: str = audit.SYSTEM_LABEL) -> PurgePlan:
    """Delete face images past their retention date, record the run and audit it, commit;
    returns what went. The one purge: `flask evidence purge` (by "cli") and the schedule's
    `evidence_purge` (by "system", EVIDENCE_PURGE_AT) both call it.

    The photo behind an active reference face (or one awaiting approval) is kept whatever its
    date: later checks are judged against it.
    """
    now = utcnow()
    plan = purge_plan(now)
    service.purge_evidence(plan.due, now)
    run = PurgeRun(ran_at=now, purged=len(plan.due), cutoff=now)
    db.session.add(run)
    db.session.flush()
    audit.record(
        "evidence.purge",
        actor=None,
        actor_label=by,
        subject_type="purge_run",
        subject_id=run.id,
        detail={
            "purged": len(plan.due),
            "by_kind": dict(Counter(evidence.kind.value for evidence in plan.due)),
            "kept": plan.kept,
        },
    )
    db.session.commit()
    return plan


@schedule.register("evidence_purge", "EVIDENCE_PURGE_AT")
def scheduled_purge() -> int:
    """The retention purge on the schedule; returns the images deleted."""
    return len(purge_expired(by=audit.SYSTEM_LABEL).due)


@evidence_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
def purge(dry_run: bool) -> None:
    """Delete face images past their retention date; their rows stay, marked purged.

    The photo behind an active reference face (or one awaiting approval) is kept whatever its
    date: later checks are judged against it. The schedule runs the same purge every day
    (EVIDENCE_PURGE_AT; `flask schedule list`).
    """
    if dry_run:
        plan = purge_plan(utcnow())
        click.echo(
            f"dry run: would purge {len(plan.due)} image(s) ({plan.by_kind()}) past their "
            f"retention date; would keep {plan.kept} image(s) of reference faces in use; "
            "nothing changed"
        )
        db.session.rollback()
        return
    plan = purge_expired(by=audit.CLI_LABEL)
    click.echo(
        f"purged {len(plan.due)} image(s) ({plan.by_kind()}) past their retention date; "
        f"kept {plan.kept} image(s) of reference faces in use"
    )


@bp.cli.command("pending")
def pending() -> None:
    """Re-enrolled faces waiting for staff approval."""
    for reference in service.pending_references():
        created = f"{reference.created_at:%Y-%m-%d %H:%M}"
        click.echo(f"{reference.id}\tuser {reference.user_id}\t{created}")


@bp.cli.command("approve")
@click.argument("reference_id", type=int)
@click.option("--reject", is_flag=True, help="Reject the new photo instead; the old one stays.")
def approve(reference_id: int, reject: bool) -> None:
    """Approve (or --reject) a re-enrolled face."""
    try:
        reference = service.decide_reference(reference_id, approve=not reject, staff=None)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"reference {reference.id} of user {reference.user_id} is {reference.status.value}")


@bp.cli.command("flags")
def flags() -> None:
    """Open identity flags, such as one face on two accounts."""
    for flag in service.open_identity_flags():
        click.echo(
            f"{flag.id}\t{flag.code}\tuser {flag.user_id}\tother {flag.other_user_id}\t"
            f"{flag.model} score {flag.score}"
        )


@bp.cli.command("resolve")
@click.argument("flag_id", type=int)
@click.option(
    "--outcome",
    type=click.Choice(["cleared", "confirmed"]),
    required=True,
    help="cleared: two different people, the trainee may study; confirmed: one person.",
)
@click.option("--note", required=True, help="What was found; kept with the decision.")
def resolve(flag_id: int, outcome: str, note: str) -> None:
    """Close an identity flag after looking at both accounts' photos."""
    try:
        flag = workflow.resolve_flag(flag_id, outcome, note, auditor=None)
    except AppError as error:
        raise click_error(error) from None
    db.session.commit()
    click.echo(f"flag {flag.id} is {flag.status.value}")


# --------------------------------------------------------------------------- reencode


@bp.cli.command("reencode")
@click.option(
    "--batch",
    type=click.IntRange(min=1, max=10_000),
    default=100,
    show_default=True,
    help="References re-encoded per committed batch.",
)
@click.option(
    "--in-background",
    is_flag=True,
    help="Queue the reencode_faces job for the workers instead (see `flask jobs list`).",
)
@click.pass_context
def reencode_command(ctx: click.Context, batch: int, in_background: bool) -> None:
    """Re-encode every active reference (and any awaiting approval) with the configured model.

    Until a trainee's reference is re-encoded, their checks are judged by the model that
    encoded it, so trainees study throughout. Safe to stop and run again. Exit status: 0 when
    every such reference has an encoding of the configured model, 1 when some could not be
    re-encoded (listed on stderr).
    """
    if in_background:
        from app.jobs import service as jobs
        from app.verification.jobs import REENCODE_KIND

        job = jobs.enqueue(REENCODE_KIND, 0)
        db.session.commit()
        jobs.dispatch(job.id)
        click.echo(f"job {job.id} queued: {REENCODE_KIND}")
        return
    model = service.model()
    click.echo(f"{service.references_left(model)} reference(s) to re-encode with {model.name}")
    failed = service.reencode_all(
        model,
        batch=batch,
        report=lambda done, total, failed: click.echo(
            f"re-encoded {done}/{total}" + (f", {len(failed)} failed" if failed else "")
        ),
    )
    for reference_id, code in sorted(failed.items()):
        click.echo(f"reference {reference_id}: {code}", err=True)
    left = service.references_left(model)
    click.echo(f"done: {left} reference(s) left on another model")
    ctx.exit(1 if left else 0)
