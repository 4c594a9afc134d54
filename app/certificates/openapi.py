"""The Certificates operation of the API document: public verification."""

from __future__ import annotations

from app.openapi.spec import Endpoint, Schema, json_response, nullable, obj, string

SCHEMAS: dict[str, Schema] = {
    "Certificate": obj(
        {
            "valid": {
                "type": "boolean",
                "description": "Issued and not revoked: the certificate certifies its training.",
            },
            "number": string("The certificate number, e.g. `VS2026-7KQ3M-X9D2R`."),
            "name": string("The holder's name, masked: the first character, then `*` (`张**`)."),
            "occupation_code": string("Code in the 2022 Occupational Classification."),
            "occupation_name": string(),
            "hours": {"type": "number", "minimum": 0, "description": "Verified study hours."},
            "issued_at": string(format="date-time"),
            "revoked_at": nullable(
                string("When it was revoked; null while valid.", format="date-time")
            ),
        }
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "get",
        "/api/v1/certificates/{number}",
        "Certificates",
        "Verify a certificate",
        "Public: anyone holding a certificate number may check it. Answers whether it is "
        "valid or revoked, with the holder's name masked. The same answer is a page at "
        "`/verify/{number}`, which also checks the printed verification code (`?code=`).",
        responses={200: json_response("Certificate", "The certificate.")},
        errors=("certificate_not_found",),
    ),
]
