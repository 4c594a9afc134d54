"""JSON API: the caller's inbox and marking a notification read."""

from __future__ import annotations

from flask import jsonify, request

from app.extensions import db
from app.http import int_arg
from app.identity.auth import api_auth, current_api_user
from app.notifications import bp, service


@bp.get("/api/v1/me/notifications")
@api_auth()
def api_notifications():
    page = service.inbox(
        current_api_user(),
        before=service.parse_cursor(request.args.get("before")),
        limit=int_arg("limit", service.PAGE_SIZE, low=1, high=100),
    )
    return jsonify(
        {
            "items": [service.item_json(item) for item in page.items],
            "unread": page.unread,
            "next_before": page.next_before,
        }
    )


@bp.post("/api/v1/me/notifications/<int:notification_id>/read")
@api_auth()
def api_mark_read(notification_id: int):
    user = current_api_user()
    notification = service.mark_read(user, notification_id)
    db.session.commit()
    return jsonify({**service.item_json(notification), "unread": service.unread_count(user)})
