"""Identity rules: who may register, how people sign in, and what a token proves."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from app import security
from app.db import utcnow
from app.errors import Conflict, Invalid, TooManyRequests, Unauthorized
from app.extensions import db
from app.identity import resident_id
from app.identity.models import STAFF_ROLES, ApiToken, Role, Sex, User
from app.identity.throttle import LoginThrottle

ID_DIGEST = "resident-id-digest"
ID_CIPHER = "resident-id-cipher"
LOGIN_KEY = "login-throttle"

# Chinese given and family names; `·` joins the parts of transliterated or minority names.
HAN = r"\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ee5f"
NAME_PATTERN = re.compile(rf"^[{HAN}]+(·[{HAN}]+)*$")
NAME_DOTS = str.maketrans({"・": "·", "•": "·", "‧": "·", "∙": "·", "．": "·", ".": "·"})
PHONE_PATTERN = re.compile(r"^1[3-9]\d{9}$")
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128

ID_MESSAGES = {
    "format": _l("A resident ID number has 17 digits followed by a digit or X."),
    "province": _l("The first two digits are not a province code."),
    "birth_date": _l("The birth date in this ID number is not a real past date."),
    "check_digit": _l("The last character does not match; check the number for a typo."),
}

hasher = PasswordHasher()


@dataclass(frozen=True)
class Registration:
    name: str
    resident: resident_id.ResidentId
    phone: str
    password: str


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def check_name(raw: Any) -> tuple[str | None, Any]:
    if not isinstance(raw, str) or not raw.strip():
        return None, _l("Enter your name as on your ID card.")
    name = unicodedata.normalize("NFC", "".join(raw.split())).translate(NAME_DOTS)
    if not 2 <= len(name) <= 20 or not NAME_PATTERN.match(name):
        return None, _l("Enter your name in Chinese characters as on your ID card (2 to 20).")
    return name, None


def check_phone(raw: Any) -> tuple[str | None, Any]:
    phone = "".join(raw.split()) if isinstance(raw, str) else None
    if not phone or not PHONE_PATTERN.match(phone):
        return None, _l("Enter an 11-digit mobile number starting with 1.")
    return phone, None


def check_password(raw: Any, *, forbidden: tuple[str, ...] = ()) -> Any:
    """None when the password is acceptable, else the reason."""
    if not isinstance(raw, str) or not PASSWORD_MIN <= len(raw) <= PASSWORD_MAX:
        return _l("Use 8 to 128 characters.")
    if not re.search(r"[A-Za-z]", raw) or not re.search(r"\d", raw):
        return _l("Use both letters and digits.")
    if any(item and item.upper() in raw.upper() for item in forbidden):
        return _l("Do not use your ID or phone number in the password.")
    return None


def validate_registration(data: dict[str, Any], *, today: date) -> Registration:
    """Check every field and report all problems at once."""
    errors: dict[str, Any] = {}
    name, problem = check_name(data.get("name"))
    if problem:
        errors["name"] = problem
    resident = None
    raw_id = _text(data.get("id_number"))
    if raw_id is None or not raw_id.strip():
        errors["id_number"] = _l("Enter your 18-digit resident ID number.")
    else:
        try:
            resident = resident_id.parse(raw_id, today=today)
        except resident_id.ResidentIdError as error:
            errors["id_number"] = ID_MESSAGES[error.reason]
    phone, problem = check_phone(data.get("phone"))
    if problem:
        errors["phone"] = problem
    forbidden = tuple(x for x in (resident.number if resident else raw_id, phone) if x)
    problem = check_password(data.get("password"), forbidden=forbidden)
    if problem:
        errors["password"] = problem
    if errors:
        raise Invalid(fields=errors)
    assert name and resident and phone  # every field passed
    return Registration(name=name, resident=resident, phone=phone, password=data["password"])


def id_digest(number: str) -> str:
    return security.keyed_digest(ID_DIGEST, number)


def _insert(user: User, conflict: Conflict) -> User:
    """Add a user; a unique clash (including one from a concurrent request) becomes a 409."""
    try:
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError:
        raise conflict from None
    return user


def register_trainee(data: dict[str, Any], *, today: date) -> User:
    reg = validate_registration(data, today=today)
    digest = id_digest(reg.resident.number)
    already = Conflict(
        _l("This ID number is already registered. Sign in instead."), code="already_registered"
    )
    if db.session.scalar(sa.select(User.id).where(User.id_number_digest == digest)):
        raise already
    user = User(
        role=Role.TRAINEE,
        name=reg.name,
        id_number_digest=digest,
        id_number_cipher=security.encrypt(ID_CIPHER, reg.resident.number),
        id_number_masked=reg.resident.masked,
        phone=reg.phone,
        birth_date=reg.resident.birth_date,
        sex=Sex.MALE if reg.resident.male else Sex.FEMALE,
        password_hash=hasher.hash(reg.password),
    )
    return _insert(user, already)


def create_staff(role: Role, username: str, password: str, name: str | None = None) -> User:
    errors: dict[str, Any] = {}
    if role not in STAFF_ROLES:
        errors["role"] = _l("Staff accounts are auditors or admins.")
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        errors["username"] = _l("Use 3 to 64 lower-case letters, digits, dot, dash or underscore.")
    problem = check_password(password, forbidden=(username,))
    if problem:
        errors["password"] = problem
    if errors:
        raise Invalid(fields=errors)
    user = User(
        role=role, username=username, name=name or username, password_hash=hasher.hash(password)
    )
    taken = Conflict(_l("This username is taken."), code="username_taken")
    if db.session.scalar(sa.select(User.id).where(User.username == username)):
        raise taken
    return _insert(user, taken)


def find_by_login(login: str) -> User | None:
    """A resident ID finds a trainee; anything else is a staff username."""
    number = resident_id.normalize(login)
    if resident_id.SHAPE.match(number):
        return db.session.scalar(sa.select(User).where(User.id_number_digest == id_digest(number)))
    return db.session.scalar(sa.select(User).where(User.username == login.strip().lower()))


def throttle() -> LoginThrottle:
    return current_app.extensions["veriskill.login_throttle"]


def authenticate(login: Any, password: Any, *, address: str) -> User:
    """The user behind these credentials, counting failures toward a lockout."""
    if not isinstance(login, str) or not login.strip() or not isinstance(password, str):
        raise Invalid(
            fields={
                name: _l("Required.")
                for name, value in (("login", login), ("password", password))
                if not isinstance(value, str) or not value.strip()
            }
            or {"login": _l("Required.")}
        )
    account = security.keyed_digest(LOGIN_KEY, resident_id.normalize(login).lower())
    locked = throttle().check(account, address)
    if locked:
        minutes = math.ceil(locked.retry_after_s / 60)
        raise TooManyRequests(
            _l("Too many failed sign-ins. Try again in %(minutes)d minutes.", minutes=minutes),
            code="locked_out",
            headers={"Retry-After": str(locked.retry_after_s)},
            retry_after_s=locked.retry_after_s,
        )
    user = find_by_login(login)
    if user is None or not user.is_active or not _verify_password(user, password):
        throttle().failed(account, address)
        raise Unauthorized(_l("Wrong ID number, username or password."), code="bad_credentials")
    throttle().succeeded(account)
    user.last_login_at = utcnow()
    return user


def end_sessions(user: User) -> None:
    """End every signed-in browser session of the account (on sign-out)."""
    user.session_epoch += 1


def _verify_password(user: User, password: str) -> bool:
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return True


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough to store them safely.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, *, ttl_s: int, label: str = "") -> tuple[str, ApiToken]:
    token = "vsk_" + secrets.token_urlsafe(32)
    row = ApiToken(
        user=user,
        token_hash=token_hash(token),
        prefix=token[:12],
        label=label,
        expires_at=utcnow() + timedelta(seconds=ttl_s),
    )
    db.session.add(row)
    db.session.flush()
    return token, row


def user_for_token(token: str, *, now: datetime | None = None) -> User | None:
    """The active user a token belongs to, if the token is live."""
    now = now or utcnow()
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None or not row.usable_at(now) or not row.user.is_active:
        return None
    # Writing on every request would be a hot row; a minute's precision is plenty. The stamp
    # is its own short transaction: in the request's, it would hold SQLite's write lock through
    # whatever the request does next (seconds of face work), and other writers would time out.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        with db.engine.begin() as connection:
            connection.execute(
                sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
            )
        set_committed_value(row, "last_used_at", now)
    return row.user


def revoke_token(token: str) -> bool:
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def tokens_of(user: User) -> list[ApiToken]:
    query = sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list(db.session.scalars(query))


def revoke_token_id(user: User, token_id: int) -> ApiToken | None:
    """Revoke one of user's tokens by id; None if user has no such token."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def unusable_password_hash() -> str:
    """A valid hash nobody knows the password of: service accounts sign in only by token."""
    return hasher.hash(secrets.token_urlsafe(32))
