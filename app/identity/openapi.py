"""The Accounts operations of the API document: registration, sign-in codes, tokens, the caller."""

from __future__ import annotations

from app.identity.models import Role, Sex
from app.openapi.spec import (
    Endpoint,
    Schema,
    integer,
    json_request,
    json_response,
    nullable,
    obj,
    one_of,
    string,
)

SCHEMAS: dict[str, Schema] = {
    "Registration": obj(
        {
            "name": string("Name in Chinese characters as on the ID card, 2 to 20.", minLength=2),
            "id_number": string(
                "18-digit resident ID number (GB 11643-1999); the last character may be X.",
                examples=["110105199003071239"],
            ),
            "phone": string("11-digit mainland mobile number.", pattern=r"^1[3-9]\d{9}$"),
            "password": string(
                "8 to 128 characters, letters and digits, not containing the ID or phone number.",
                minLength=8,
                maxLength=128,
            ),
        },
        {
            "district": string(
                "Where the trainee works or is insured: a code of `GET /api/v1/districts`. "
                "Optional for clients written before districts; without it the trainee is "
                'asked on their profile and counted under "district not stated".',
                pattern=r"^\d{6}$",
                examples=["500103"],
            ),
            "phone_code": string(
                "While SMS is on (`SMS_BACKEND`): the 6-digit code texted to `phone` by "
                "`POST /api/v1/auth/phone-code`; missing or wrong, `invalid_code`.",
                pattern=r"^\d{6}$",
            ),
        },
        description="A trainee registering by real name; every problem is reported at once.",
        closed=False,
    ),
    "PhoneCodeRequest": obj(
        {"phone": string("11-digit mainland mobile number.", pattern=r"^1[3-9]\d{9}$")},
        closed=False,
    ),
    "CodeSent": obj(
        {
            "message": string("For people, in the caller's language."),
            "expires_in_s": integer("The code works this long.", minimum=1),
            "resend_after_s": integer("Another code for this phone after this long.", minimum=1),
        }
    ),
    "PasswordResetRequest": obj(
        {"login": string("The trainee's resident ID number.")},
        closed=False,
    ),
    "PasswordResetConfirm": obj(
        {
            "login": string("The trainee's resident ID number."),
            "code": string("The 6-digit code texted to the account's phone.", pattern=r"^\d{6}$"),
            "password": string(
                "The new password: 8 to 128 characters, letters and digits, not containing "
                "the ID or phone number.",
                minLength=8,
                maxLength=128,
            ),
        },
        closed=False,
    ),
    "PasswordReset": obj({"message": string("For people, in the caller's language.")}),
    "Registered": obj({"id": integer("The new account.")}),
    "TokenRequest": obj(
        {
            "login": string("A trainee's resident ID number, or a staff username."),
            "password": string(),
        },
        {
            "captcha_id": string("After `captcha_required`: the captcha answered."),
            "captcha_answer": string("The characters in its picture; case does not matter."),
        },
        closed=False,
    ),
    "PasswordChange": obj(
        {
            "current_password": string(),
            "new_password": string(
                "8 to 128 characters with letters and digits, not containing the ID number, "
                "phone number or username.",
                minLength=8,
                maxLength=128,
            ),
        },
        closed=False,
    ),
    "Token": obj(
        {
            "token": string("Send as `Authorization: Bearer <token>`. Shown only this once."),
            "expires_at": string("When the token stops working.", format="date-time"),
        }
    ),
    "User": obj(
        {
            "id": integer(),
            "role": one_of(Role),
            "name": string(),
            "username": nullable(string("Staff and platform accounts.")),
            "id_number": nullable(string("Masked, e.g. `110105********1239`. Trainees only.")),
            "phone": nullable(string("Masked, e.g. `139****5678`.")),
            "birth_date": nullable(string(format="date")),
            "sex": nullable(one_of(Sex)),
            "district": nullable(
                obj(
                    {
                        "code": string("A code of `GET /api/v1/districts`.", pattern=r"^\d{6}$"),
                        "name": string("In the caller's language."),
                    },
                    description="Trainees: where they work or are insured (null until they "
                    "choose it); district officers: the district they serve.",
                )
            ),
        }
    ),
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "post",
        "/api/v1/auth/register",
        "Accounts",
        "Register a trainee",
        "Creates a trainee account under a real name and resident ID number.",
        body=json_request(
            "Registration",
            {
                "name": "李四",
                "id_number": "110105199003071239",
                "phone": "13912345678",
                "password": "Study2026ok",
                "district": "500103",
            },
        ),
        responses={201: json_response("Registered", "Registered.")},
        errors=("invalid", "invalid_code", "already_registered", "too_many_registrations"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/phone-code",
        "Accounts",
        "Text a registration code to a phone",
        "While SMS is on, registration needs the 6-digit code this texts to the phone "
        "(valid `SMS_CODE_TTL_S`, 5 minutes by default; five tries). One code per phone a "
        "minute and a few an hour, a few more per client address.",
        body=json_request("PhoneCodeRequest", {"phone": "13912345678"}),
        responses={202: json_response("CodeSent", "The code is on its way.")},
        errors=("invalid", "too_many_requests", "sms_disabled", "sms_unavailable"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/password-reset",
        "Accounts",
        "Text a password-reset code",
        "Texts a code to the phone of the account behind `login`. The answer is the same "
        "whether or not such an account exists or has a phone; only a flood from one client "
        "address is refused (`too_many_requests`).",
        body=json_request("PasswordResetRequest", {"login": "110105199003071239"}),
        responses={202: json_response("CodeSent", "A code was sent if the account exists.")},
        errors=("invalid", "too_many_requests", "sms_disabled", "sms_unavailable"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/password-reset/confirm",
        "Accounts",
        "Set a new password with the texted code",
        "Every browser session and API token of the account ends. A wrong, expired or used "
        "code, or an unknown login, is `invalid_code`; a weak password is `invalid` (only "
        "once the code is right, which stays usable).",
        body=json_request(
            "PasswordResetConfirm",
            {"login": "110105199003071239", "code": "042917", "password": "Fresh2027ok"},
        ),
        responses={200: json_response("PasswordReset", "The password is changed.")},
        errors=("invalid", "invalid_code"),
    ),
    Endpoint(
        "post",
        "/api/v1/auth/token",
        "Accounts",
        "Get an API token",
        "Trainees sign in with their ID number, staff with their username. After repeated "
        "failures for one login, each try needs a captcha (`captcha_required`); after more "
        "from one client address, the address is locked for a while (`locked_out`). "
        "Platforms get their tokens from the bureau instead.",
        body=json_request("TokenRequest", {"login": "110105199003071239", "password": "…"}),
        responses={200: json_response("Token", "A new token.")},
        errors=("invalid", "bad_credentials", "captcha_required", "locked_out"),
    ),
    Endpoint(
        "delete",
        "/api/v1/auth/token",
        "Accounts",
        "Revoke the calling token",
        "Signs the bearer token of this request out for good.",
        roles=(),
        responses={204: {"description": "Revoked."}},
        temporary_password=True,
    ),
    Endpoint(
        "get",
        "/api/v1/me",
        "Accounts",
        "The calling account",
        roles=(),
        responses={200: json_response("User", "The caller.")},
        temporary_password=True,
    ),
    Endpoint(
        "post",
        "/api/v1/me/password",
        "Accounts",
        "Change the caller's password",
        "Every signed-in browser session of the account and every other token ends; the "
        "calling token (or browser session) stays.",
        roles=(),
        body=json_request(
            "PasswordChange", {"current_password": "…", "new_password": "Fresh2027ok"}
        ),
        responses={204: {"description": "Changed."}},
        errors=("invalid", "bad_credentials", "locked_out"),
        temporary_password=True,
    ),
]
