"""The consent texts, versioned. Change a text's wording and its version moves on: everyone is
asked again, and what each trainee agreed to stays on record under the version they saw.

Texts are English in the code and translated like every other string; the retention period is
read from the settings (EVIDENCE_RETENTION_DAYS), so the text never promises what the
purge does not do.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l

FACE = "face_verification"
# The version of each purpose's text in force: a consent to any other version does not count.
CURRENT = {FACE: "face-2026-12"}

TITLES = {FACE: _l("Consent to face processing")}

# (heading, paragraphs) of the face-processing text; %(days)d and %(years)d are the retention.
FACE_SECTIONS = (
    (
        _l("What is captured"),
        (
            _l(
                "A photo of your face when you enrol it, and photos taken by your camera at the "
                "start of each lesson and at random moments while you study (face checks)."
            ),
            _l(
                "From each photo the system computes a face encoding: a list of numbers that "
                "describes your face. It is stored encrypted and is not a picture."
            ),
        ),
    ),
    (
        _l("Why"),
        (
            _l(
                "The city labour bureau pays a training subsidy only for study it can prove was "
                "done by the named trainee: no record, no subsidy. The photos prove that you, "
                "and nobody else, did the studying."
            ),
            _l(
                "When you enrol, your face is also compared once with the faces of other "
                "trainees, so that one person cannot study under two accounts."
            ),
        ),
    ),
    (
        _l("Who sees it"),
        (
            _l(
                "The system's face matching compares the photos automatically. The bureau's "
                "auditors see your photos when they review your study record or a question "
                "about your identity; every view is recorded in a tamper-evident log."
            ),
            _l(
                "Training platforms never receive your photos or face encoding. They are not "
                "published and not used for any other purpose."
            ),
        ),
    ),
    (
        _l("How long it is kept"),
        (
            _l(
                "Photos are kept for %(days)d days (about %(years)d years) after the subsidy "
                "decision they back, or after they were taken if no decision follows; then "
                "they are deleted. Your enrolled face is kept while it is used for face checks."
            ),
            _l(
                "Photos behind a subsidy decision already made (a subsidy paid or refused) are "
                "kept for that full period even if you withdraw consent: the bureau must be "
                "able to show the evidence behind public money."
            ),
        ),
    ),
    (
        _l("How to withdraw"),
        (
            _l(
                "You can withdraw this consent at any time on the page \u201cConsent to face "
                "processing\u201d under My account. Withdrawing deletes your enrolled face, its "
                "encoding and every photo that does not back a subsidy decision already made."
            ),
            _l(
                "After that, online study of courses that need face checks can no longer be "
                "credited toward a subsidy. You can still have your training recognised "
                "through the bureau's offline route: an identity check in person at the public "
                "employment service hall of your district. You may consent again later and "
                "enrol your face again."
            ),
        ),
    ),
)


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: list[str]


def retention() -> dict[str, int]:
    days = int(current_app.config["EVIDENCE_RETENTION_DAYS"])
    return {"days": days, "years": max(1, round(days / 365))}


def sections(purpose: str) -> list[Section]:
    """The text of a purpose in the current language, as headed sections."""
    if purpose != FACE:
        raise KeyError(purpose)
    values = retention()
    return [
        Section(str(heading), [str(paragraph) % values for paragraph in paragraphs])
        for heading, paragraphs in FACE_SECTIONS
    ]


def plain_text(purpose: str) -> str:
    """The whole text as one string: title, then each heading and its paragraphs."""
    parts = [str(TITLES[purpose])]
    for section in sections(purpose):
        parts.append(section.heading)
        parts.extend(section.paragraphs)
    return "\n\n".join(parts)
