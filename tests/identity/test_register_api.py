"""POST /api/v1/auth/register: real-name registration, and every way to get it wrong."""

from datetime import date

import pytest

from app import security
from app.extensions import db
from app.identity import service
from app.identity.models import Role, Sex, User
from tests.conftest import TRAINEE_ID, count_rows

VALID = {
    "name": "王小明",
    "id_number": TRAINEE_ID,
    "phone": "13800138000",
    "password": "Study2026ok",
}


def register(client, **changes):
    return client.post("/api/v1/auth/register", json={**VALID, **changes})


def test_registers_trainee_with_identity_from_the_id_number(client, fresh_app):
    response = register(client)
    assert response.status_code == 201
    user_id = response.get_json()["id"]
    with fresh_app.app_context():
        user = db.session.get(User, user_id)
        assert user.role is Role.TRAINEE
        assert user.name == "王小明"
        assert user.birth_date == date(1990, 3, 7)
        assert user.sex is Sex.MALE
        assert user.id_number_masked == "110105********1239"
        # The number itself is stored only encrypted, and found again through its digest.
        assert TRAINEE_ID not in (user.id_number_cipher or "")
        assert security.decrypt(service.ID_CIPHER, user.id_number_cipher) == TRAINEE_ID
        assert service.find_by_login(TRAINEE_ID).id == user_id
        assert user.password_hash.startswith("$argon2id$")


def test_second_registration_with_same_id_gets_409(client, fresh_app):
    assert register(client).status_code == 201
    again = register(client, id_number=TRAINEE_ID.lower(), phone="13900000000", name="王二")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_registered"
    assert count_rows(fresh_app, User) == 1


def test_accepts_names_with_middle_dot(client):
    assert register(client, name="阿依古丽・买买提").status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id_number", "110105199003071238"),  # wrong check digit
        ("id_number", "110105209901011234"),  # born in 2099
        ("id_number", "990105199003071234"),  # unknown province
        ("id_number", "not a number"),
        ("name", "Robert'); DROP TABLE user;--"),
        ("name", "王"),  # one character
        ("name", "王" * 21),
        ("name", "Wang Xiaoming"),
        ("phone", "12800138000"),
        ("phone", "1380013800"),
        ("password", "short1"),
        ("password", "onlyletters"),
        ("password", "13800138000a"),  # contains the phone number
    ],
)
def test_refuses_bad_field_naming_it_and_writes_nothing(client, fresh_app, field, value):
    response = register(client, **{field: value})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {field}
    assert error["fields"][field]
    assert count_rows(fresh_app, User) == 0


def test_reports_every_bad_field_at_once(client):
    response = client.post("/api/v1/auth/register", json={"name": 12, "id_number": None})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"name", "id_number", "phone", "password"}


@pytest.mark.parametrize(
    "body", [{"name": ["王小明"]}, {"id_number": 110105199003071239}, {"password": 12345678}]
)
def test_wrong_types_are_422_not_500(client, body):
    response = register(client, **body)
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == set(body)


def test_malformed_json_is_400(client, fresh_app):
    response = client.post(
        "/api/v1/auth/register", data="{name: 王", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"
    assert count_rows(fresh_app, User) == 0


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "null"])
def test_json_that_is_not_an_object_is_400(client, payload):
    response = client.post("/api/v1/auth/register", data=payload, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_json"


def test_form_encoded_body_is_415(client):
    response = client.post("/api/v1/auth/register", data=VALID)
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_ten_megabyte_body_is_413_and_writes_nothing(client, fresh_app):
    huge = '{"name": "' + "王" * (10 * 1024 * 1024 // 3) + '"}'
    response = client.post("/api/v1/auth/register", data=huge, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert count_rows(fresh_app, User) == 0


def test_error_messages_follow_the_language_cookie(client):
    chinese = register(client, phone="1")
    assert "手机" in chinese.get_json()["error"]["fields"]["phone"]
    client.set_cookie("lang", "en")
    english = register(client, phone="1")
    assert "mobile number" in english.get_json()["error"]["fields"]["phone"]
