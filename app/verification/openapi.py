"""The reference-face operations of the API document (the Faces tag)."""

from __future__ import annotations

from typing import get_args

from app.identity.models import Role
from app.openapi.spec import Endpoint, Schema, integer, json_response, nullable, obj, ref, string
from media_pipeline.faces import FaceErrorCode

# How checks report a score, wherever one is shown (study, the auditors' desk).
SCORE = (
    "The best frame's face score, in the terms of the model that judged: a distance for "
    "`dlib` (lower is more alike), a cosine similarity for ONNX models (higher is more alike)."
)

SCHEMAS: dict[str, Schema] = {
    "FaceUpload": obj(
        {
            "image": string(
                "One photo: JPEG, PNG or WebP, at most 10 MB.", contentMediaType="image/*"
            )
        },
        closed=False,
    ),
    "FaceEnrolled": obj(
        {
            "status": string(
                "`active`, or `pending_approval` for a re-enrolment after studying.",
                enum=["active", "pending_approval"],
            ),
            "quality": obj(
                {
                    "face_px": integer("Height of the face in pixels."),
                    "blur": {"type": "number", "description": "Sharpness (higher is sharper)."},
                    "brightness": {"type": "number", "description": "Mean light on the face."},
                }
            ),
            "under_review": {
                "type": "boolean",
                "description": "The face matches another trainee's: an auditor looks first.",
            },
        }
    ),
    "FaceStatus": obj(
        {
            "enrolled": {"type": "boolean"},
            "pending_approval": {"type": "boolean"},
            "under_review": {"type": "boolean"},
            "closed": {
                "type": "boolean",
                "description": "Staff found this face on another account of the same person.",
            },
            "enrolled_at": nullable(string(format="date-time")),
        }
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "put",
        "/api/v1/me/face",
        "Faces",
        "Enrol the reference face",
        "One clear photo of the trainee alone. Quality gates say why a photo is refused. The "
        "photo is kept as evidence. A face that matches another trainee's is flagged for an "
        "auditor, and that trainee cannot study until it is resolved.",
        roles=(Role.TRAINEE,),
        body={"required": True, "content": {"multipart/form-data": {"schema": ref("FaceUpload")}}},
        responses={200: json_response("FaceEnrolled", "Enrolled.")},
        errors=(
            "consent_required",
            "invalid",
            *get_args(FaceErrorCode),
        ),
        storage=True,
    ),
    Endpoint(
        "get",
        "/api/v1/me/face",
        "Faces",
        "Whether the trainee's face is enrolled",
        roles=(Role.TRAINEE,),
        responses={200: json_response("FaceStatus", "The enrolment state.")},
    ),
]
