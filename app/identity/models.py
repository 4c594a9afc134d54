"""Accounts and API tokens."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import security
from app.db import str_enum, utcnow
from app.extensions import Model

if TYPE_CHECKING:
    from app.platforms.models import Platform


class Role(enum.StrEnum):
    TRAINEE = "trainee"
    PLATFORM = "platform"
    AUDITOR = "auditor"
    ADMIN = "admin"
    # Staff of one district's bureau: auditor's work and statistics, for that district only
    # (app.bureau.scope narrows every query they cause).
    DISTRICT_OFFICER = "district_officer"


STAFF_ROLES = frozenset({Role.AUDITOR, Role.ADMIN, Role.DISTRICT_OFFICER})
# The encryption purpose of birth dates (app.security derives a key of its own for each).
BIRTH_DATE_CIPHER = "resident-birth-date-cipher"


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


def mask_name(name: str) -> str:
    """`张**`: the first character, then one star for each other character (at least one).

    Pages for staff and the public verification page show this, never the full name.
    """
    name = (name or "").strip()
    if not name:
        return "*"
    return name[0] + "*" * max(1, len(name) - 1)


class User(UserMixin, Model):
    """Anyone who signs in. Trainees carry their real-name identity; staff a username."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[Role] = mapped_column(str_enum(Role), index=True)
    # Staff and platform service accounts sign in with a username; trainees never have one.
    username: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    # The resident ID number is sensitive: a keyed digest to enforce uniqueness and look it up,
    # the number encrypted for the few staff tasks that need it, and the masked form for pages.
    id_number_digest: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    id_number_cipher: Mapped[str | None] = mapped_column(sa.Text)
    id_number_masked: Mapped[str | None] = mapped_column(sa.String(18))
    phone: Mapped[str | None] = mapped_column(sa.String(11))
    # The birth date is digits 7-14 of the ID number, exactly what the masked form hides: kept
    # only encrypted (its own purpose), so no column readable without DATA_KEY rebuilds the
    # number. Read it through `birth_date`.
    birth_date_cipher: Mapped[str | None] = mapped_column(sa.Text)
    sex: Mapped[Sex | None] = mapped_column(str_enum(Sex, length=6))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Platform service accounts act for one platform, and only while it is active.
    platform_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("platform.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Moves on at every sign-out: a signed-in cookie names it, so copies of the cookie made
    # before stop working (server-side revocation of a client-side session).
    session_epoch: Mapped[int] = mapped_column(default=0)
    # Trainees: the district where they work or are insured, which they choose (not the ID
    # number's birthplace) and staff may correct. District officers: the district they serve.
    district_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("district.code", ondelete="RESTRICT"), index=True
    )
    # Set when staff hand out a temporary password: the next sign-in must choose a new one.
    password_change_required: Mapped[bool] = mapped_column(default=False)

    platform: Mapped[Platform | None] = relationship("Platform")

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def get_id(self) -> str:
        """What a signed-in session keeps: the account and its session epoch."""
        return f"{self.id}.{self.session_epoch}"

    @property
    def birth_date(self) -> date | None:
        """The birth date, decrypted (shown to its owner only)."""
        if self.birth_date_cipher is None:
            return None
        return date.fromisoformat(security.decrypt(BIRTH_DATE_CIPHER, self.birth_date_cipher))

    @birth_date.setter
    def birth_date(self, value: date | None) -> None:
        self.birth_date_cipher = (
            None if value is None else security.encrypt(BIRTH_DATE_CIPHER, value.isoformat())
        )

    @property
    def is_active(self) -> bool:
        """Sessions and tokens work only while this is true (Flask-Login asks it too)."""
        return self.active and (self.platform is None or self.platform.active)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def phone_masked(self) -> str | None:
        return f"{self.phone[:3]}****{self.phone[-4:]}" if self.phone else None

    @property
    def name_masked(self) -> str:
        return mask_name(self.name)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class ApiToken(Model):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters, kept so people can tell their tokens apart in a list.
    prefix: Mapped[str] = mapped_column(sa.String(12))
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    def usable_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and moment < self.expires_at


class CodePurpose(enum.StrEnum):
    """What an SMS code proves; also the SMS template kind that carries it."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 (a purpose, not a password)
    REGISTER = "register"


class SmsCode(Model):
    """A one-time code sent by SMS. Neither the code nor the phone is stored: a keyed digest
    of each (the code's digest binds its purpose and phone, so it matches nothing else)."""

    __tablename__ = "sms_code"
    __table_args__ = (sa.Index("ix_sms_code_lookup", "purpose", "phone_digest", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[CodePurpose] = mapped_column(str_enum(CodePurpose))
    phone_digest: Mapped[str] = mapped_column(sa.String(64))
    # The account a password-reset code is for; none for a registration code.
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    code_digest: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Tries made with this code, right or wrong; it stops working at SMS_CODE_MAX_ATTEMPTS.
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None]
