"""The enrolment operation of the API document (the Study tag)."""

from __future__ import annotations

from app.identity.models import Role
from app.openapi.spec import Endpoint, Schema, integer, json_response, obj

SCHEMAS: dict[str, Schema] = {
    "Enrolled": obj({"id": integer("The new enrolment.")}),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "post",
        "/api/v1/courses/{course_id}/enrollments",
        "Study",
        "Enrol in a published course",
        roles=(Role.TRAINEE,),
        responses={201: json_response("Enrolled", "Enrolled.")},
        errors=("already_enrolled",),
    ),
]
