"""Pages: the public verification page, and the printable certificate for its holder and staff."""

from __future__ import annotations

from decimal import Decimal

import segno
from flask import redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup

from app.certificates import bp, service
from app.courses.models import LEVEL_LABELS
from app.errors import NotFound
from app.identity.auth import role_required
from app.identity.models import Role

# Verification answers change when a certificate is revoked: never serve them from a cache.
NO_STORE = {"Cache-Control": "no-store"}


@bp.app_template_filter("hours_text")
def hours_text(hours: Decimal | float) -> str:
    """Hours as people write them: `16`, `12.5`, `0.25`."""
    text = f"{Decimal(str(hours)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def qr_svg(data: str) -> Markup:
    """A QR code of `data` as inline SVG, drawn on the server (no script, no outside service).

    Medium error correction survives a crease or a smudge on paper; the size comes from CSS.
    """
    code = segno.make(data, error="m", micro=False)
    svg = code.svg_inline(
        border=4,
        dark="#000",
        light="#fff",
        omitsize=True,
        svgclass="qr",
        title=str(_l("QR code: scan to verify this certificate")),
    )
    return Markup(svg)  # noqa: S704 (segno escapes the title; the rest is its own markup)


@bp.get("/verify")
def verify_form():
    """Type a certificate's number (and code) from a paper copy."""
    number = request.args.get("number", "").strip()[: service.MAX_INPUT]
    code = request.args.get("code", "").strip()[: service.MAX_INPUT]
    if number:
        canonical = service.normalize_number(number) or number
        return redirect(url_for("certificates.verify", number=canonical, code=code or None))
    return render_template("certificates/verify.html", certificate=None, number="", code="")


@bp.get("/verify/<number>")
def verify(number: str):
    code = request.args.get("code", "").strip()[: service.MAX_INPUT]
    try:
        certificate = service.lookup(number, public=True)
    except NotFound:
        page = render_template(
            "certificates/verify.html",
            certificate=None,
            number=number[: service.MAX_INPUT],
            code=code,
        )
        return page, 404, NO_STORE
    page = render_template(
        "certificates/verify.html",
        certificate=certificate,
        public=service.public_json(certificate),
        number=certificate.number,
        code=code,
        code_matches=service.code_matches(certificate, code) if code else None,
        level_labels=LEVEL_LABELS,
    )
    return page, 200, NO_STORE


@bp.get("/certificates")
@role_required(Role.TRAINEE)
def mine():
    return render_template(
        "certificates/mine.html", certificates=service.certificates_of(current_user.id)
    )


@bp.get("/certificates/<number>")
@login_required
def printable(number: str):
    certificate = service.certificate_for(current_user, number)
    page = render_template(
        "certificates/printable.html",
        certificate=certificate,
        holder=service.holder(certificate),
        holder_name=service.name_for(certificate, current_user),
        level_labels=LEVEL_LABELS,
        url=service.verification_url(certificate),
        qr=qr_svg(service.printed_url(certificate)),
    )
    return page, 200, {"Cache-Control": "private, no-store"}
