"""`flask audit verify|anchor|list`: check the audit log's keyed chain against its anchors,
anchor its head outside the database, and read it."""

from __future__ import annotations

import json

import click

from app.audit import bp, service

bp.cli.short_help = "Check and read the tamper-evident audit log."

EXIT_INTACT = 0
EXIT_BROKEN = 1


def _dumps(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)


@bp.cli.command("verify")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check every entry's keyed seal and link, and the log against its anchors; one JSON line.

    Exit status 0 when the log is intact, 1 when not; then `code` says what is wrong (bad_seal,
    broken_link, missing, rewritten, tail_cut, anchor_forged, ...) and first_bad_seq names the
    first entry that was altered, is missing, or was cut off.
    """
    result = service.verify()
    click.echo(_dumps(result.as_dict()))
    ctx.exit(EXIT_INTACT if result.ok else EXIT_BROKEN)


@bp.cli.command("anchor")
@click.pass_context
def anchor(ctx: click.Context) -> None:
    """Write the log's head to the anchor file (AUDIT_ANCHOR_PATH) if it moved; one JSON line.

    Exit status 0 when the head is anchored (now or already), 1 when the log does not follow
    from the last anchor and nothing was written; then `code` says why.
    """
    result = service.anchor()
    click.echo(_dumps(result.as_dict()))
    ctx.exit(EXIT_INTACT if result.ok else EXIT_BROKEN)


def _subject(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, str | None] | None:
    if value is None:
        return None
    kind, _, ident = value.partition(":")
    if not kind:
        raise click.BadParameter("expected TYPE or TYPE:ID, such as course:12")
    return kind, ident or None


@bp.cli.command("list")
@click.option(
    "--subject",
    callback=_subject,
    metavar="TYPE[:ID]",
    help="Only entries about this subject, such as course:12 (or all courses: course).",
)
@click.option("--action", help="Only entries of this action, such as course.publish.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Latest N entries."
)
def list_entries(subject: tuple[str, str | None] | None, action: str | None, limit: int) -> None:
    """The latest entries, newest first, one JSON line each."""
    kind, ident = subject if subject else (None, None)
    for entry in service.entries(kind, ident, limit=limit, action=action):
        click.echo(_dumps(service.describe(entry)))
