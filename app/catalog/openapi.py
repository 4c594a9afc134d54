"""The Occupations operations of the API document: the classification, the course search."""

from __future__ import annotations

from app.courses.models import CourseLevel
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

OCCUPATION_FIELDS: dict[str, Schema] = {
    "code": string("Code in the 2022 Occupational Classification, e.g. `4-10-01-06`."),
    "name": string(),
    "level": integer(
        "1 major group, 2 medium group, 3 minor group, 4 detailed occupation.", minimum=1, maximum=4
    ),
    "parent_code": nullable(string("The group above; null for major groups.")),
}

SCHEMAS: dict[str, Schema] = {
    "Occupation": obj(OCCUPATION_FIELDS),
    "OccupationPage": obj(
        {
            "items": array(ref("Occupation")),
            "total": integer("Matches across all pages.", minimum=0),
        }
    ),
    "OccupationDetail": obj(
        {
            **OCCUPATION_FIELDS,
            "children": array(ref("Occupation"), "The nodes directly below, in the book's order."),
        }
    ),
    "CatalogueCourse": obj(
        {
            "id": integer(),
            "title": string(),
            "url": string("The course's page on this site, e.g. `/courses/12`."),
            "occupation": obj(
                {
                    "code": string("Code in the 2022 Occupational Classification."),
                    "name": string(),
                }
            ),
            "platform": obj({"id": integer(), "name": string()}),
            "level": nullable(one_of(CourseLevel)),
            "level_label": nullable(string("The level in the caller's language.")),
            "hours": {"type": "number", "description": "Class hours the course declares."},
            "lessons": integer(minimum=0),
            "video_s": nullable(
                {"type": "number", "description": "The length of all its videos, in seconds."}
            ),
            "published_at": nullable(string(format="date-time")),
        }
    ),
    "CataloguePage": obj(
        {
            "items": array(ref("CatalogueCourse")),
            "total": integer("Matches across all pages.", minimum=0),
            "page": integer(minimum=1),
            "per_page": integer(minimum=1, maximum=50),
            "occupation": {
                "anyOf": [ref("Occupation"), {"type": "null"}],
                "description": "The occupation or group searched within; null for all.",
            },
        }
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/occupations",
        "Occupations",
        "Search the occupational classification",
        "Matches names containing `q`, codes starting with it, or a GB/T 6565 code.",
        parameters=(
            query("q", string(maxLength=100), "Search text, at most 100 characters."),
            query("level", integer(minimum=0, maximum=4, default=0), "Only this level; 0 any."),
            query("parent", string(), "Only the nodes directly below this code."),
            query("page", integer(minimum=1, maximum=10_000, default=1), "Page number."),
            query("per_page", integer(minimum=1, maximum=100, default=20), "Items per page."),
        ),
        responses={200: json_response("OccupationPage", "One page of matches.")},
        errors=("invalid",),
    ),
    Endpoint(
        "get",
        "/api/v1/occupations/{code}",
        "Occupations",
        "One occupation or group, with its children",
        responses={200: json_response("OccupationDetail", "The node.")},
    ),
    Endpoint(
        "get",
        "/api/v1/catalogue/courses",
        "Occupations",
        "Find published courses",
        "No sign-in. Matches `q` in the course title, the occupation's name or the "
        "platform's name (any case), the start of the occupation's code, or its GB/T 6565 "
        "code; `occupation` keeps only courses filed under that occupation or anywhere below "
        "that group. Newest published first, with the id breaking ties, so pages neither "
        "overlap nor skip. `GET /api/v1/courses` stays the calling platform's own list.",
        parameters=(
            query("q", string(maxLength=100), "Search text, at most 100 characters."),
            query("occupation", string(), "An occupation or group code, e.g. `6-31`."),
            query("page", integer(minimum=1, maximum=10_000, default=1), "Page number."),
            query("per_page", integer(minimum=1, maximum=50, default=20), "Items per page."),
        ),
        responses={200: json_response("CataloguePage", "One page of courses.")},
        errors=("invalid", "occupation_not_found"),
    ),
]
