"""The Districts operation of the API document: the list records are filed by."""

from __future__ import annotations

from app.bureau.models import DistrictKind
from app.openapi.spec import Endpoint, Schema, array, json_response, obj, one_of, ref, string

SCHEMAS: dict[str, Schema] = {
    "District": obj(
        {
            "code": string("GB/T 2260 code, or the bureau's code of a management zone."),
            "name": string("Chinese name."),
            "name_en": string("English name."),
            "kind": one_of(DistrictKind, "`district`, `county` or `zone` (a management zone)."),
        }
    ),
    "DistrictList": obj({"items": array(ref("District"), "In the bureau's order.")}),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/districts",
        "Districts",
        "The city's districts",
        "Public. The county-level divisions and the management zones that report like them; "
        "trainees, platforms and courses name theirs by `code`.",
        responses={200: json_response("DistrictList", "Every district.")},
    ),
]
