"""Pages: the inbox (/me/inbox), marking notifications read."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.identity.models import Role
from app.notifications import bp, service
from app.urls import safe_next


@bp.get("/me/inbox")
@login_required
def inbox():
    user = current_user._get_current_object()
    page = service.inbox(user, before=service.parse_cursor(request.args.get("before")))
    items = [
        {
            "id": item.id,
            "text": service.render(item),
            "link": service.link(item),
            "when": service.when(item.created_at),
            "read": item.read_at is not None,
        }
        for item in page.items
    ]
    return render_template(
        "notifications/inbox.html", items=items, unread=page.unread, next_before=page.next_before
    )


@bp.post("/me/inbox/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    notification = service.mark_read(current_user._get_current_object(), notification_id)
    db.session.commit()
    target = safe_next(request.form.get("next"))
    if target is None and request.form.get("open"):
        target = service.link(notification)
    return redirect(target or url_for("notifications.inbox"))


@bp.post("/me/inbox/read")
@login_required
def mark_all_read():
    service.mark_all_read(current_user._get_current_object())
    db.session.commit()
    return redirect(url_for("notifications.inbox"))


@bp.app_context_processor
def unread_notifications() -> dict:
    """`inbox_unread`: the signed-in reader's unread count, for the header's inbox link."""
    # Only trainees are told anything (and shown the link): no query on staff pages.
    if not current_user.is_authenticated or current_user.role is not Role.TRAINEE:
        return {"inbox_unread": 0}
    return {"inbox_unread": service.unread_count(current_user)}
