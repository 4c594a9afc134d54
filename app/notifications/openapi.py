"""The Notifications operations of the API document: the caller's inbox."""

from __future__ import annotations

from app.notifications.service import KINDS as NOTIFICATION_KINDS
from app.openapi.spec import (
    Endpoint,
    Schema,
    array,
    integer,
    json_response,
    nullable,
    obj,
    one_of,
    query,
    ref,
    string,
)

SCHEMAS: dict[str, Schema] = {
    "Notification": obj(
        {
            "id": integer(minimum=1),
            "kind": one_of(sorted(NOTIFICATION_KINDS)),
            "text": string("Rendered when read, in the caller's language."),
            "link": nullable(string("Where to act on it (a page path).")),
            "created_at": string(format="date-time"),
            "read": {"type": "boolean"},
            "read_at": nullable(string(format="date-time")),
        }
    ),
    "NotificationRead": obj(
        {
            "id": integer(minimum=1),
            "kind": string(),
            "text": string(),
            "link": nullable(string()),
            "created_at": string(format="date-time"),
            "read": {"type": "boolean"},
            "read_at": nullable(string(format="date-time")),
            "unread": integer(minimum=0),
        }
    ),
    "Inbox": obj(
        {
            "items": array(ref("Notification"), "Newest first."),
            "unread": integer(minimum=0),
            "next_before": nullable(
                integer("Pass as `before` for the next (older) page.", minimum=1)
            ),
        }
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/me/notifications",
        "Notifications",
        "The caller's inbox",
        "Newest first, `limit` (1-100, default 20) at a time; pass `next_before` as `before` "
        "for older ones. Texts are rendered in the caller's language when read.",
        roles=(),
        parameters=(
            query("before", integer(minimum=1), "The cursor of the next page."),
            query("limit", integer(minimum=1, maximum=100), "Items per page (default 20)."),
        ),
        responses={200: json_response("Inbox", "Notifications and the unread count.")},
        errors=("invalid",),
    ),
    Endpoint(
        "post",
        "/api/v1/me/notifications/{notification_id}/read",
        "Notifications",
        "Mark a notification read",
        roles=(),
        responses={200: json_response("NotificationRead", "Marked; the unread count after.")},
        errors=("notification_not_found",),
    ),
]
