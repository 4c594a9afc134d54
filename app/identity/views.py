"""Pages: register, sign in (with a captcha when due), sign out, profile, password change,
password recovery by SMS code, staff password resets, and the password prompt before
decisions on the desk."""

from __future__ import annotations

import time

from cryptography.fernet import InvalidToken
from flask import (
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user

from app import security
from app.audit import service as audit
from app.bureau import groups
from app.bureau import service as bureau
from app.bureau.models import TraineeGroupKind
from app.errors import AppError, Invalid, NotFound
from app.extensions import db, login_manager
from app.identity import bp, challenge, service
from app.identity.auth import AUTHENTICATED_AT, address, reauthenticated, role_required
from app.identity.codes import CODE_SENT, PASSWORD_RESET_DONE, RESET_CODE_SENT, InvalidCode
from app.identity.models import Role, User
from app.timeutil import today_local
from app.urls import safe_next

REGISTER_FIELDS = ("name", "id_number", "phone", "district")


# How often a signed-in page view refreshes the session's "last seen" time (seconds).
SEEN_EVERY_S = 60


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The account a session names, if the session's epoch is still the account's: sign-out,
    a password change and deactivation move it on, and every copy of the cookie made before
    then stops working."""
    user_id, _, epoch = session_id.partition(".")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_epoch != int(epoch) or not user.is_active:
        return None
    return user


def start_session(user: User) -> None:
    session.clear()  # a fresh session on sign-in: no fixation
    login_user(user)
    session["signed_in_at"] = session["seen_at"] = session[AUTHENTICATED_AT] = time.time()


@bp.before_app_request
def end_stale_sessions() -> None:
    """A signed-in session ends after SESSION_IDLE_S without a request and SESSION_MAX_S
    after sign-in, whatever the cookie says."""
    if "_user_id" not in session:
        return
    now = time.time()
    idle = now - float(session.get("seen_at", 0))
    age = now - float(session.get("signed_in_at", 0))
    if idle > current_app.config["SESSION_IDLE_S"] or age > current_app.config["SESSION_MAX_S"]:
        logout_user()
        session.clear()
    elif idle > SEEN_EVERY_S:
        session["seen_at"] = now


# Where someone who must replace a temporary password may still go.
OPEN_WITH_TEMPORARY_PASSWORD = frozenset(
    {"identity.change_password", "identity.logout", "site.switch_language", "static"}
)


@bp.before_app_request
def require_new_password():
    """After staff set a temporary password, every page leads to the password change until
    the trainee has chosen one (the API answers 403 `password_change_required`: auth.api_auth)."""
    if (
        request.endpoint in OPEN_WITH_TEMPORARY_PASSWORD
        or request.path.startswith("/api/")
        or "_user_id" not in session
        or not current_user.is_authenticated
        or not current_user.password_change_required
    ):
        return None
    return redirect(url_for("identity.change_password"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("identity.profile"))
    values = {name: request.form.get(name, "") for name in REGISTER_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    verify_phone = service.sms_enabled()
    if request.method == "POST" and verify_phone and request.form.get("send_code"):
        # Without JavaScript the "send code" button submits the form (sms-code.js calls the
        # API instead and stays on the page).
        try:
            service.request_phone_code(values["phone"], address=address())
        except AppError as error:
            db.session.rollback()
            errors["phone"] = str((error.fields or {}).get("phone") or error.message)
            status = error.status
        else:
            db.session.commit()
            flash(str(CODE_SENT), "info")
    elif request.method == "POST":
        service.register_allowed(address())
        data = dict(
            values,
            password=request.form.get("password", ""),
            phone_code=request.form.get("phone_code", ""),
        )
        if data["password"] != request.form.get("password_confirm", ""):
            errors["password_confirm"] = _("The two passwords differ.")
        try:
            user = service.register_trainee(
                data, today=today_local(), verify_phone=verify_phone, require_district=True
            )
            if errors:
                raise Invalid(fields=errors)
        except InvalidCode as error:
            db.session.commit()  # the try on the code counts; nothing else was written
            errors.update({k: str(v) for k, v in (error.fields or {}).items()})
            status = 422
        except Invalid as error:
            db.session.rollback()
            errors.update({k: str(v) for k, v in (error.fields or {}).items()})
            status = 422
        except AppError as error:  # already registered
            db.session.rollback()
            errors["id_number"] = str(error.message)
            status = error.status
        else:
            db.session.commit()
            start_session(user)
            flash(_("Welcome, %(name)s. Your account is ready.", name=user.name), "success")
            return redirect(url_for("identity.profile"))
    html = render_template(
        "identity/register.html",
        values=values,
        errors=errors,
        verify_phone=verify_phone,
        districts=bureau.districts(),
    )
    return html, status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("identity.profile"))
    login_value = request.form.get("login", "")
    error = None
    captcha_id = None
    status = 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        try:
            user = service.authenticate(
                login_value,
                request.form.get("password", ""),
                address=address(),
                captcha_id=request.form.get("captcha_id") or None,
                captcha_answer=request.form.get("captcha_answer"),
            )
        except AppError as failure:
            db.session.commit()  # the audit entries of the failure stay
            error = str(failure.message)
            if isinstance(failure, Invalid):
                error = _("Enter your ID number or username and your password.")
            captcha_id = failure.extra.get("captcha_id")
            status = failure.status
            headers = failure.headers
        else:
            db.session.commit()
            start_session(user)
            return redirect(safe_next(request.args.get("next")) or url_for("identity.profile"))
    html = render_template(
        "identity/login.html", login_value=login_value, error=error, captcha_id=captcha_id
    )
    return html, status, headers


@bp.get("/login/captcha/<captcha_id>.png")
def captcha_image(captcha_id: str):
    """The picture of a captcha handed out with `captcha_required`, while it is unused;
    `?new=...` draws another (a new answer under the same id) for a picture nobody can read."""
    if request.args.get("new"):
        challenge.renew(captcha_id)
    png = challenge.image(captcha_id)
    if png is None:
        raise NotFound(_l("This picture has expired. Ask for a new one by signing in again."))
    response = make_response(png)
    response.headers["Content-Type"] = "image/png"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        service.end_sessions(user)
        audit.record_request("sign_out", subject_type="user", subject_id=user.id, actor=user)
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("site.home"))


@bp.get("/profile")
@login_required
def profile():
    trainee = current_user.role is Role.TRAINEE
    return render_template(
        "identity/profile.html",
        user=current_user,
        district=bureau.district_of(current_user),
        districts=bureau.districts() if trainee and current_user.district_code is None else [],
        groups=groups.groups_of(current_user.id) if trainee else [],
        group_kinds=list(TraineeGroupKind),
    )


# --- forgotten passwords ---------------------------------------------------------------------

# The session keeps the login typed on the first page, encrypted (session cookies are only
# signed), so the second page need not ask for the ID number again.
RESET_LOGIN = "reset_login"
RESET_LOGIN_CIPHER = "password-reset-login"


def _remembered_login() -> str:
    token = session.get(RESET_LOGIN)
    if not token:
        return ""
    try:
        return security.decrypt(RESET_LOGIN_CIPHER, token)
    except InvalidToken:
        return ""


@bp.route("/account/forgot", methods=["GET", "POST"])
def forgot_password():
    """Ask for a code texted to the account's phone; the answer never says whether the
    account exists."""
    enabled = service.sms_enabled()
    login_value = request.form.get("login", "")
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST" and enabled:
        try:
            service.request_password_reset(login_value, address=address())
        except AppError as error:
            db.session.rollback()
            errors["login"] = str((error.fields or {}).get("login") or error.message)
            status = error.status
        else:
            db.session.commit()
            session[RESET_LOGIN] = security.encrypt(RESET_LOGIN_CIPHER, login_value.strip())
            flash(str(RESET_CODE_SENT), "info")
            return redirect(url_for("identity.forgot_password_confirm"))
    html = render_template(
        "identity/forgot.html", enabled=enabled, login_value=login_value, errors=errors
    )
    return html, status


@bp.route("/account/forgot/confirm", methods=["GET", "POST"])
def forgot_password_confirm():
    """Enter the texted code and a new password."""
    if not service.sms_enabled():
        return redirect(url_for("identity.forgot_password"))
    login_value = request.form.get("login") or _remembered_login()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        new = request.form.get("password", "")
        try:
            if new != request.form.get("password_confirm", ""):
                raise Invalid(fields={"password_confirm": _l("The two passwords differ.")})
            service.reset_password(login_value, request.form.get("code", ""), new)
        except InvalidCode as error:
            db.session.commit()  # the try on the code counts
            errors = {k: str(v) for k, v in (error.fields or {}).items()}
            status = 422
        except AppError as error:
            db.session.rollback()
            errors = {k: str(v) for k, v in (error.fields or {}).items()}
            if not errors:
                errors["code"] = str(error.message)
            status = error.status
        else:
            db.session.commit()
            session.pop(RESET_LOGIN, None)
            flash(str(PASSWORD_RESET_DONE), "success")
            return redirect(url_for("identity.login"))
    html = render_template("identity/forgot_confirm.html", login_value=login_value, errors=errors)
    return html, status


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password; every other session and API token of the account ends, this
    browser stays signed in."""
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        user = current_user._get_current_object()
        new = request.form.get("new_password", "")
        try:
            if new != request.form.get("new_password_confirm", ""):
                raise Invalid(fields={"new_password_confirm": _l("The two passwords differ.")})
            service.change_password(
                user, request.form.get("current_password", ""), new, address=address()
            )
        except Invalid as error:
            db.session.rollback()
            errors = {k: str(v) for k, v in (error.fields or {}).items()}
            status = 422
        except AppError as error:
            db.session.commit()  # a wrong current password is counted and recorded
            errors = {"current_password": str(error.message)}
            status = error.status
        else:
            db.session.commit()
            start_session(user)  # this browser, under the account's new epoch
            flash(_("Your password is changed. Other devices have been signed out."), "success")
            return redirect(url_for("identity.profile"))
    return render_template("identity/password.html", errors=errors), status


# --- staff: reset a trainee's password after checking identity in person ---------------------


def _account_page(found: User | None = None, errors: dict[str, str] | None = None, status=200):
    html = render_template(
        "identity/admin_accounts.html",
        found=found,
        searched=found is not None or request.method == "POST",
        id_number="",
        errors=errors or {},
    )
    return html, status


@bp.route("/admin/accounts", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def admin_accounts():
    """Find a trainee by the full ID number on the card in front of you (masked results)."""
    if request.method == "GET":
        return _account_page()
    try:
        found = service.find_trainee_by_id_number(request.form.get("id_number", ""))
    except Invalid as error:
        errors = {k: str(v) for k, v in (error.fields or {}).items()}
        return _account_page(errors=errors, status=422)
    if found is None:
        return _account_page(errors={"id_number": _("No trainee account has this ID number.")})
    return _account_page(found)


@bp.post("/admin/accounts/<int:user_id>/password")
@role_required(Role.ADMIN)
@reauthenticated
def admin_reset_password(user_id: int):
    """Give the trainee a temporary password, shown once, to be changed at next sign-in."""
    try:
        password = service.staff_reset_password(
            current_user._get_current_object(),
            user_id,
            identity_checked=request.form.get("identity_checked") == "yes",
        )
    except Invalid as error:
        db.session.rollback()
        errors = {k: str(v) for k, v in (error.fields or {}).items()}
        return _account_page(db.session.get(User, user_id), errors, 422)
    db.session.commit()
    user = db.session.get(User, user_id)
    response = make_response(
        render_template("identity/temporary_password.html", user=user, password=password)
    )
    response.headers["Cache-Control"] = "no-store"
    return response
