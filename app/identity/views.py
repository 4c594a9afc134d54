"""Pages: register, sign in, sign out, profile."""

from __future__ import annotations

import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.errors import AppError, Invalid
from app.extensions import db, login_manager
from app.identity import bp, service
from app.identity.models import User
from app.timeutil import today_local
from app.urls import safe_next

REGISTER_FIELDS = ("name", "id_number", "phone")


# How often a signed-in page view refreshes the session's "last seen" time (seconds).
SEEN_EVERY_S = 60


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The account a session names, if the session's epoch is still the account's: a sign-out
    moves it on, and every copy of the cookie made before then stops working."""
    user_id, _, epoch = session_id.partition(".")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.session_epoch == int(epoch) else None


def start_session(user: User) -> None:
    session.clear()  # a fresh session on sign-in: no fixation
    login_user(user)
    session["signed_in_at"] = session["seen_at"] = time.time()


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


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("identity.profile"))
    values = {name: request.form.get(name, "") for name in REGISTER_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data = dict(values, password=request.form.get("password", ""))
        if data["password"] != request.form.get("password_confirm", ""):
            errors["password_confirm"] = _("The two passwords differ.")
        try:
            user = service.register_trainee(data, today=today_local())
            if errors:
                raise Invalid(fields=errors)
        except Invalid as error:
            errors.update({k: str(v) for k, v in (error.fields or {}).items()})
            status = 422
        except AppError as error:  # already registered
            errors["id_number"] = str(error.message)
            status = error.status
        else:
            db.session.commit()
            start_session(user)
            flash(_("Welcome, %(name)s. Your account is ready.", name=user.name), "success")
            return redirect(url_for("identity.profile"))
        db.session.rollback()
    return render_template("identity/register.html", values=values, errors=errors), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("identity.profile"))
    login_value = request.form.get("login", "")
    error = None
    status = 200
    if request.method == "POST":
        try:
            user = service.authenticate(
                login_value,
                request.form.get("password", ""),
                address=request.remote_addr or "unknown",
            )
        except AppError as failure:
            error = str(failure.message)
            if isinstance(failure, Invalid):
                error = _("Enter your ID number or username and your password.")
            status = failure.status
        else:
            db.session.commit()
            start_session(user)
            return redirect(safe_next(request.args.get("next")) or url_for("identity.profile"))
    return (
        render_template("identity/login.html", login_value=login_value, error=error),
        status,
    )


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        service.end_sessions(current_user)
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("site.home"))


@bp.get("/profile")
@login_required
def profile():
    return render_template("identity/profile.html", user=current_user)
