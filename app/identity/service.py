"""Identity rules: who may register, how people sign in, and what a token proves."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from app import security
from app.audit import service as audit
from app.bureau.models import District
from app.db import savepoint, utcnow
from app.errors import Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from app.extensions import db
from app.identity import challenge, codes, resident_id, sms
from app.identity.models import STAFF_ROLES, ApiToken, CodePurpose, Role, Sex, User
from app.identity.throttle import LoginThrottle
from app.jobs import schedule

log = logging.getLogger(__name__)

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


@cache
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    """One hasher per cost, built once: it holds no state but its parameters."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def password_hasher() -> PasswordHasher:
    """Argon2id at the app's PASSWORD_HASH_COST: the strong default everywhere but in the test
    suite, whose thousands of throwaway passwords would otherwise spend minutes hashing."""
    return _hasher(*current_app.config["PASSWORD_HASH_COST"])


@dataclass(frozen=True)
class Registration:
    name: str
    resident: resident_id.ResidentId
    phone: str
    password: str
    district: str | None = None


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


def check_district(raw: Any, *, required: bool) -> tuple[str | None, Any]:
    """A district code from the list; none at all is allowed unless `required` (the trainee
    then chooses on their profile)."""
    code = _text(raw)
    if raw is not None and code is None:
        return None, _l("Choose a district from the list.")
    code = (code or "").strip()
    if not code:
        return None, (
            _l("Choose the district where you work or are insured.") if required else None
        )
    if db.session.get(District, code) is None:
        return None, _l("Choose a district from the list.")
    return code, None


def validate_registration(
    data: dict[str, Any], *, today: date, require_district: bool = False
) -> Registration:
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
    district, problem = check_district(data.get("district"), required=require_district)
    if problem:
        errors["district"] = problem
    if errors:
        raise Invalid(fields=errors)
    assert name and resident and phone  # every field passed
    return Registration(
        name=name, resident=resident, phone=phone, password=data["password"], district=district
    )


def id_digest(number: str) -> str:
    return security.keyed_digest(ID_DIGEST, number)


def _insert(user: User, conflict: Conflict) -> User:
    """Add a user; a unique clash (including one from a concurrent request) becomes a 409."""
    try:
        with savepoint(db.session):
            db.session.add(user)
    except IntegrityError:
        raise conflict from None
    return user


def register_trainee(
    data: dict[str, Any],
    *,
    today: date,
    verify_phone: bool = False,
    require_district: bool = False,
) -> User:
    """A new trainee account. With verify_phone, `data["phone_code"]` must be the live code
    texted to the phone (`request_phone_code`), used up here; else 422 `invalid_code`.

    `data["district"]` is where the trainee works or is insured (a code of the list). The
    registration page requires it; the API takes an account without one (the trainee is
    asked on their profile, and statistics count them under "district not stated")."""
    reg = validate_registration(data, today=today, require_district=require_district)
    digest = id_digest(reg.resident.number)
    already = Conflict(
        _l("This ID number is already registered. Sign in instead."), code="already_registered"
    )
    if db.session.scalar(sa.select(User.id).where(User.id_number_digest == digest)):
        raise already
    if verify_phone:
        row = codes.check(
            CodePurpose.REGISTER, reg.phone, data.get("phone_code"), field="phone_code"
        )
        codes.use(row, field="phone_code")
    user = User(
        role=Role.TRAINEE,
        name=reg.name,
        id_number_digest=digest,
        id_number_cipher=security.encrypt(ID_CIPHER, reg.resident.number),
        id_number_masked=reg.resident.masked,
        phone=reg.phone,
        birth_date=reg.resident.birth_date,
        sex=Sex.MALE if reg.resident.male else Sex.FEMALE,
        password_hash=password_hasher().hash(reg.password),
        district_code=reg.district,
    )
    return _insert(user, already)


def create_staff(
    role: Role,
    username: str,
    password: str,
    name: str | None = None,
    district_code: str | None = None,
) -> User:
    """An auditor or admin (city-wide), or a district officer of `district_code`."""
    errors: dict[str, Any] = {}
    if role not in STAFF_ROLES:
        errors["role"] = _l("Staff accounts are auditors, admins or district officers.")
    if (role is Role.DISTRICT_OFFICER) != bool(district_code):
        errors["district"] = (
            _l("A district officer serves one district: name it.")
            if role is Role.DISTRICT_OFFICER
            else _l("Auditors and admins work city-wide: they have no district.")
        )
    elif district_code and db.session.get(District, district_code) is None:
        errors["district"] = _l("Choose a district from the list.")
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        errors["username"] = _l("Use 3 to 64 lower-case letters, digits, dot, dash or underscore.")
    problem = check_password(password, forbidden=(username,))
    if problem:
        errors["password"] = problem
    if errors:
        raise Invalid(fields=errors)
    user = User(
        role=role,
        username=username,
        name=name or username,
        district_code=district_code,
        password_hash=password_hasher().hash(password),
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


def masked_login(login: str, user: User | None = None) -> str:
    """How a login is named in the audit log: an ID number masked, a known account by its
    label, anything else cut to its first character (it may be a password typed in the
    wrong field)."""
    number = resident_id.normalize(login)
    if resident_id.SHAPE.match(number):
        return resident_id.mask(number)
    if user is not None and user.username:
        return user.username
    text = login.strip()
    return (text[:1] + "***") if text else "***"


def _audit_sign_in(
    action: str, user: User | None, label: str, address: str, *, acting: bool = False, **detail: Any
) -> None:
    """An entry about a sign-in: by the user once signed in (`acting`), else by whoever typed
    the masked login, about the account it names if there is one."""
    audit.record(
        action,
        actor=user if acting else None,
        actor_label=None if acting else label,
        subject_type="user",
        subject_id=user.id if user is not None else None,
        address=address,
        detail=detail,
    )


def _captcha_required(message: Any) -> Unauthorized:
    captcha_id = challenge.new()
    return Unauthorized(
        message,
        code="captcha_required",
        captcha_id=captcha_id,
        captcha_image=url_for("identity.captcha_image", captcha_id=captcha_id),
    )


def authenticate(
    login: Any,
    password: Any,
    *,
    address: str,
    captcha_id: Any = None,
    captcha_answer: Any = None,
    via: str = "page",
) -> User:
    """The user behind these credentials.

    The attempt is counted before anything is looked up: past the address's limit it is
    refused outright (`locked_out`), past the account's it needs a solved captcha
    (`captcha_required`). Unknown logins and inactive accounts cost one Argon2 verification
    like known ones, so timing tells nothing. Failures, lockouts and captcha demands are
    recorded in the audit log (flushed: the caller commits them even though it answers with
    the error).
    """
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
    label = masked_login(login)
    limits = throttle()
    attempt = limits.attempt(account, address)
    if attempt.locked:
        if attempt.address_count == limits.max_per_address + 1:
            _audit_sign_in("sign_in.locked_out", None, label, address, via=via, scope="address")
        minutes = math.ceil(attempt.locked.retry_after_s / 60)
        raise TooManyRequests(
            _l("Too many failed sign-ins. Try again in %(minutes)d minutes.", minutes=minutes),
            code="locked_out",
            headers={"Retry-After": str(attempt.locked.retry_after_s)},
            retry_after_s=attempt.locked.retry_after_s,
        )
    if attempt.needs_captcha and not challenge.solved(captcha_id, captcha_answer):
        if attempt.account_count == limits.max_per_account + 1:
            _audit_sign_in("sign_in.captcha_demanded", None, label, address, via=via)
        raise _captcha_required(
            _l("Type the characters in the picture, then your password.")
            if not captcha_id
            else _l("The characters did not match the picture. Try this new one.")
        )
    user = find_by_login(login)
    right = _verify_password(user, password)
    if user is None or not right or not user.is_active:
        _audit_sign_in("sign_in.failed", user, masked_login(login, user), address, via=via)
        raise Unauthorized(_l("Wrong ID number, username or password."), code="bad_credentials")
    limits.succeeded(account, address)
    user.last_login_at = utcnow()
    _audit_sign_in("sign_in", user, label, address, acting=True, via=via)
    return user


def confirm_password(user: User, password: Any, *, address: str) -> None:
    """Check a signed-in user's password again (re-authentication, password change), counted
    like a sign-in: a session thief cannot guess on without limit."""
    # The account's own sign-in counter: guesses here and at the sign-in form add up.
    login = user.username or _id_number_of(user) or f"user:{user.id}"
    account = security.keyed_digest(LOGIN_KEY, resident_id.normalize(login).lower())
    limits = throttle()
    attempt = limits.attempt(account, address)
    if attempt.locked or attempt.needs_captcha:
        retry = attempt.locked.retry_after_s if attempt.locked else limits.lockout_s
        raise TooManyRequests(
            _l("Too many wrong passwords. Sign out and sign in again."),
            code="locked_out",
            headers={"Retry-After": str(retry)},
            retry_after_s=retry,
        )
    if not isinstance(password, str) or not _verify_password(user, password):
        audit.record_request("reauth.failed", subject_type="user", subject_id=user.id, actor=user)
        raise Unauthorized(_l("The password is not right."), code="bad_credentials")
    limits.succeeded(account, address)


def register_allowed(address: str) -> None:
    """Count a registration attempt from address; refuse once it has made too many."""
    locked = throttle().register_attempt(
        address,
        limit=current_app.config["REGISTER_MAX_PER_ADDRESS"],
        window_s=current_app.config["REGISTER_WINDOW_S"],
    )
    if locked:
        minutes = math.ceil(locked.retry_after_s / 60)
        raise TooManyRequests(
            _l(
                "Too many registrations from your network. Try again in %(minutes)d minutes.",
                minutes=minutes,
            ),
            code="too_many_registrations",
            headers={"Retry-After": str(locked.retry_after_s)},
            retry_after_s=locked.retry_after_s,
        )


def end_sessions(user: User) -> None:
    """End every signed-in browser session of the account (sign-out, password change,
    deactivation): each cookie names the epoch it was made in."""
    user.session_epoch += 1


def revoke_tokens(user: User, *, keep: ApiToken | None = None) -> int:
    """Revoke every live token of the account but `keep`; how many were revoked."""
    now = utcnow()
    revoked = 0
    for row in tokens_of(user):
        if row.revoked_at is None and row is not keep:
            row.revoked_at = now
            revoked += 1
    return revoked


def change_password(
    user: User, current: Any, new: Any, *, address: str, keep_token: ApiToken | None = None
) -> None:
    """Set a new password after checking the current one; every other session and token of
    the account ends (the caller starts a fresh session for the browser that asked)."""
    confirm_password(user, current, address=address)
    forbidden = tuple(x for x in (user.username, user.phone, _id_number_of(user)) if x)
    problem = check_password(new, forbidden=forbidden)
    if problem is None and new == current:
        problem = _l("Choose a password different from the current one.")
    if problem:
        raise Invalid(fields={"new_password": problem})
    set_password(user, new, action="password.changed", actor=user, keep_token=keep_token)


def set_password(
    user: User,
    new: str,
    *,
    action: str,
    actor: User | None,
    keep_token: ApiToken | None = None,
    change_required: bool = False,
    detail: dict[str, Any] | None = None,
) -> None:
    """Replace the password: every browser session and every token but keep_token ends, and
    the change is audited (never the password). The one way passwords change after sign-up:
    by their owner, by SMS code, by staff."""
    user.password_hash = password_hasher().hash(new)
    user.password_change_required = change_required
    end_sessions(user)
    revoked = revoke_tokens(user, keep=keep_token)
    audit.record_request(
        action,
        subject_type="user",
        subject_id=user.id,
        actor=actor,
        detail={**(detail or {}), "tokens_revoked": revoked},
    )


# --- recovery by SMS and by staff ---------------------------------------------------------


def sms_enabled() -> bool:
    return sms.enabled()


def request_phone_code(phone: Any, *, address: str) -> None:
    """Text a registration code to phone: 422 for a malformed number, 429 past the limits
    per address or per phone, 503 when the text cannot be sent."""
    number, problem = check_phone(phone)
    if problem:
        raise Invalid(fields={"phone": problem})
    assert number
    codes.count_address(address)
    locked = codes.phone_lockout(CodePurpose.REGISTER, codes.phone_digest(number))
    if locked:
        raise codes.too_many(locked)
    codes.issue(CodePurpose.REGISTER, number)


def request_password_reset(login: Any, *, address: str) -> None:
    """Text a reset code to the phone of the account behind login, if there is one with a
    phone. The caller answers the same whatever happened here (no enumeration): only the
    address's flood limit shows (429); a phone past its own limit silently gets nothing."""
    if not isinstance(login, str) or not login.strip():
        raise Invalid(fields={"login": _l("Enter your resident ID number.")})
    codes.count_address(address)
    user = find_by_login(login)
    if user is None or not user.phone or not user.is_active:
        return
    if codes.phone_lockout(CodePurpose.PASSWORD_RESET, codes.phone_digest(user.phone)):
        return
    try:
        codes.issue(CodePurpose.PASSWORD_RESET, user.phone, user=user)
    except sms.SmsUnavailable:
        # Answering 503 here, and 202 for logins without an account, would tell the two
        # apart. The trainee who gets no text asks again; the log tells operators.
        log.warning("password reset code for account %s not sent: SMS unavailable", user.id)
        return
    _audit_sign_in("password.reset_code_sent", user, masked_login(login, user), address)


def reset_password(login: Any, code: Any, new: Any) -> User:
    """Set a new password with the code texted to the account's phone: 422 `invalid_code` for
    an unknown login or a wrong, expired or used code (one answer for all), 422 `invalid` for
    a weak password (only once the code is right). Every session and token of the account
    ends."""
    user = find_by_login(login) if isinstance(login, str) and login.strip() else None
    if user is None or not user.phone or not user.is_active:
        raise codes.invalid_code()
    row = codes.check(CodePurpose.PASSWORD_RESET, user.phone, code, user=user)
    forbidden = tuple(x for x in (user.username, user.phone, _id_number_of(user)) if x)
    problem = check_password(new, forbidden=forbidden)
    if problem:
        raise Invalid(fields={"password": problem})
    codes.use(row)
    set_password(user, new, action="password.reset", actor=user, detail={"via": "sms"})
    return user


# Temporary passwords are drawn from these (no 0/O, 1/l/i to misread).
TEMP_LETTERS = "abcdefghjkmnpqrstuvwxyz"
TEMP_DIGITS = "23456789"


def temporary_password() -> str:
    """Ten characters easy to read aloud and type (no 0/O, 1/l/i), letters and digits."""
    alphabet = TEMP_LETTERS + TEMP_DIGITS
    while True:
        text = "".join(secrets.choice(alphabet) for _ in range(10))
        if any(c in TEMP_DIGITS for c in text) and any(c.isalpha() for c in text):
            return text


def find_trainee_by_id_number(raw: Any) -> User | None:
    """Staff look-up by the full ID number (a typo finds nobody rather than someone else)."""
    number = resident_id.normalize(raw) if isinstance(raw, str) else ""
    if not resident_id.SHAPE.match(number):
        raise Invalid(fields={"id_number": _l("Enter the full 18-character resident ID number.")})
    user = db.session.scalar(sa.select(User).where(User.id_number_digest == id_digest(number)))
    return user if user is not None and user.role is Role.TRAINEE else None


def staff_reset_password(staff: User, user_id: int, *, identity_checked: bool) -> str:
    """A temporary password for a trainee whose identity staff checked in person, to be
    changed at the next sign-in; returned once, audited without it."""
    if not identity_checked:
        raise Invalid(
            fields={
                "identity_checked": _l(
                    "Confirm that you have checked the trainee's ID card in person."
                )
            }
        )
    user = db.session.get(User, user_id)
    if user is None or user.role is not Role.TRAINEE:
        raise NotFound(_l("No trainee account has this number."))
    password = temporary_password()
    set_password(
        user,
        password,
        action="password.reset_by_staff",
        actor=staff,
        change_required=True,
        detail={"identity_checked_in_person": True},
    )
    return password


def _id_number_of(user: User) -> str | None:
    return security.decrypt(ID_CIPHER, user.id_number_cipher) if user.id_number_cipher else None


def set_active(username: str, active: bool) -> User:
    """Deactivate (every session and token ends at once) or reactivate a staff account."""
    user = db.session.scalar(sa.select(User).where(User.username == username.strip().lower()))
    if user is None or user.role not in STAFF_ROLES:
        raise NotFound(_l("No staff account has this username."))
    if user.active != active:
        user.active = active
        revoked = 0
        if not active:
            end_sessions(user)
            revoked = revoke_tokens(user)
        audit.record_request(
            "account.activated" if active else "account.deactivated",
            subject_type="user",
            subject_id=user.id,
            detail={"username": user.username, "tokens_revoked": revoked},
        )
    return user


def _dummy_hash() -> str:
    """A hash nobody knows the password of, verified when there is no account to check, so
    unknown logins take as long as known ones: made at the app's own cost."""
    return _dummy_hash_at(*current_app.config["PASSWORD_HASH_COST"])


@cache
def _dummy_hash_at(time_cost: int, memory_cost: int, parallelism: int) -> str:
    """One per cost, made once: verifying it costs what checking a real password does."""
    return _hasher(time_cost, memory_cost, parallelism).hash(secrets.token_urlsafe(32))


def _verify_password(user: User | None, password: str) -> bool:
    try:
        password_hasher().verify(
            user.password_hash if user is not None else _dummy_hash(), password
        )
    except (VerificationError, InvalidHashError):
        return False
    if user is None:
        return False
    if password_hasher().check_needs_rehash(user.password_hash):
        user.password_hash = password_hasher().hash(password)
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
    row = live_token(token, now=now)
    return row.user if row is not None else None


# How precisely a token's last use is kept (one write per token per this much time at most).
TOKEN_USE_PRECISION = timedelta(minutes=1)


def live_token(token: str, *, now: datetime | None = None) -> ApiToken | None:
    """The token's row if it is live and its user active."""
    now = now or utcnow()
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None or not row.usable_at(now) or not row.user.is_active:
        return None
    # Writing on every request would be a hot row; a minute's precision is plenty. The stamp
    # is its own short transaction: in the request's, it would hold SQLite's write lock through
    # whatever the request does next (seconds of face work), and other writers would time out.
    # Conditional, so requests racing on one token write it once.
    stale = now - TOKEN_USE_PRECISION
    if row.last_used_at is None or row.last_used_at < stale:
        with db.engine.begin() as connection:
            connection.execute(
                sa.update(ApiToken)
                .where(
                    ApiToken.id == row.id,
                    sa.or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale),
                )
                .values(last_used_at=now)
            )
        set_committed_value(row, "last_used_at", now)
    return row


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


# Expired and revoked tokens stay this long in the lists people read ("expired",
# "revoked"), then the schedule deletes them; the audit log keeps their issue and revocation.
ENDED_TOKEN_KEPT = timedelta(days=30)


@schedule.register("expire_api_tokens", "EXPIRY_SWEEP_S")
def delete_ended_tokens() -> int:
    """Delete tokens expired or revoked more than ENDED_TOKEN_KEPT ago (each API sign-in makes
    one, so they would pile up forever); returns how many went."""
    cutoff = utcnow() - ENDED_TOKEN_KEPT
    ended = sa.or_(ApiToken.expires_at < cutoff, ApiToken.revoked_at < cutoff)
    return schedule.delete_in_batches(ApiToken, ended)


def unusable_password_hash() -> str:
    """A valid hash nobody knows the password of: service accounts sign in only by token."""
    return password_hasher().hash(secrets.token_urlsafe(32))
