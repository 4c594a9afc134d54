"""Text messages to mobile phones: one function, `send`, over the backend SMS_BACKEND names.

Use::

    from app.identity import sms

    if sms.enabled("password_reset"):
        sms.send("13912345678", "password_reset", {"code": "042917"})

`kind` names a message template and `params` fills its variables (strings only). The kinds in
use, with the template text to have approved by the provider:

- ``password_reset`` ``{"code"}``: 您正在重置职训通密码，验证码${code}，5分钟内有效，请勿告诉他人。
- ``register`` ``{"code"}``: 您正在注册职训通，验证码${code}，5分钟内有效，请勿告诉他人。

A new kind (a notification, say) needs no code here: give it a template code in
SMS_ALIYUN_TEMPLATES (``kind=SMS_...``). `enabled(kind)` says whether a kind can be sent: never
with SMS_BACKEND empty, and with ``aliyun`` only for kinds that have a template; send only
when it says so.

`send` raises `SmsUnavailable` (503 ``sms_unavailable``) when SMS is off or the provider refuses
the message (any ``Code`` but ``OK``), answers with an HTTP error or not within SMS_TIMEOUT_S.
Send before committing the rows that depend on the message, so that a failure writes nothing.
Phones are written to the log masked (139****5678); nothing else about the person is.

Backends:

- ``log`` (development, the default of `make run`): the message, code included, goes to the
  logger ``app.identity.sms`` at INFO, so the developer reads the code in the terminal.
  Production refuses to start with it (config.check_sms).
- ``aliyun``: Alibaba Cloud SMS, the RPC-style ``SendSms`` action of dysmsapi (API version
  2017-05-25), signed with HMAC-SHA1 as the provider documents ("Signature mechanism"):
  SMS_ALIYUN_ACCESS_KEY_ID / _SECRET, SMS_ALIYUN_SIGN_NAME (the approved 签名),
  SMS_ALIYUN_TEMPLATES, SMS_ALIYUN_ENDPOINT.
- empty: off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import urllib3
from flask import current_app
from flask_babel import lazy_gettext as _l

from app.errors import AppError
from config import parse_sms_templates

log = logging.getLogger(__name__)

ALIYUN_VERSION = "2017-05-25"
ALIYUN_REGION = "cn-hangzhou"

# One pool for the process: connections to the provider are reused between messages.
_http = urllib3.PoolManager(num_pools=2, maxsize=4)


class SmsUnavailable(AppError):
    """The message could not be sent: SMS is off, or the provider failed or refused it."""

    status = 503
    code = "sms_unavailable"
    default_message = _l(
        "Text messages cannot be sent at the moment. Please try again in a few minutes."
    )

    def __init__(self, message: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "60"})
        super().__init__(message, **kwargs)


class SmsDisabled(AppError):
    """SMS is off on this server (SMS_BACKEND empty): nothing can be texted."""

    status = 404
    code = "sms_disabled"
    default_message = _l(
        "Codes by text message are not offered here. For a forgotten password, bring your ID "
        "card to a service counter of the labour bureau."
    )


def _config(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return config if config is not None else current_app.config


def enabled(kind: str | None = None, *, config: Mapping[str, Any] | None = None) -> bool:
    """Whether texts (of this kind) can be sent with the configured backend."""
    settings = _config(config)
    backend = settings.get("SMS_BACKEND") or ""
    if backend == "aliyun" and kind is not None:
        return kind in parse_sms_templates(settings.get("SMS_ALIYUN_TEMPLATES"))
    return backend in ("log", "aliyun")


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"


def send(
    phone: str,
    kind: str,
    params: Mapping[str, str],
    *,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Send one text of template `kind` filled with `params` to `phone` (11 digits)."""
    settings = _config(config)
    backend = settings.get("SMS_BACKEND") or ""
    params = {str(name): str(value) for name, value in params.items()}
    if backend == "log":
        _show_in_terminal()
        log.info("SMS to %s (%s): %s", mask_phone(phone), kind, json.dumps(params))
    elif backend == "aliyun":
        template = parse_sms_templates(settings.get("SMS_ALIYUN_TEMPLATES")).get(kind)
        if template is None:
            log.error("SMS kind %r has no template in SMS_ALIYUN_TEMPLATES", kind)
            raise SmsUnavailable()
        _aliyun_send(settings, phone, template, params)
    else:
        raise SmsUnavailable()


def _show_in_terminal() -> None:
    """The log backend exists to be read in the terminal of `make run`, where nobody has set
    up logging (gunicorn leaves the root logger at WARNING): give this logger a console
    handler of its own, once."""
    global _console_added
    if _console_added or log.getEffectiveLevel() <= logging.INFO:
        return
    _console_added = True
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [sms] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


_console_added = False


# --- Alibaba Cloud -------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """The provider's encoding: UTF-8, then RFC 3986 (A-Z a-z 0-9 - _ . ~ kept, the rest %XY
    in upper case, a space as %20)."""
    return quote(value, safe="-_.~")


def aliyun_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", method & %2F & encoded canonical query)), over every
    parameter but Signature, sorted by name."""
    canonical = "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _aliyun_send(
    settings: Mapping[str, Any], phone: str, template: str, params: Mapping[str, str]
) -> None:
    query = {
        "AccessKeyId": settings["SMS_ALIYUN_ACCESS_KEY_ID"] or "",
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": phone,
        "RegionId": ALIYUN_REGION,
        "SignName": settings["SMS_ALIYUN_SIGN_NAME"] or "",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": uuid.uuid4().hex,
        "SignatureVersion": "1.0",
        "TemplateCode": template,
        "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": ALIYUN_VERSION,
    }
    query["Signature"] = aliyun_signature(
        "POST", query, settings["SMS_ALIYUN_ACCESS_KEY_SECRET"] or ""
    )
    body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query.items())
    masked = mask_phone(phone)
    try:
        response = _http.request(
            "POST",
            settings["SMS_ALIYUN_ENDPOINT"],
            body=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            timeout=urllib3.Timeout(total=float(settings.get("SMS_TIMEOUT_S") or 10.0)),
            retries=False,
        )
    except urllib3.exceptions.HTTPError as error:
        log.error("SMS to %s not sent: the provider did not answer (%s)", masked, error)
        raise SmsUnavailable() from None
    try:
        answer = json.loads(response.data)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.status != 200 or answer.get("Code") != "OK":
        log.error(
            "SMS to %s not sent: HTTP %s, Code %s, Message %s, RequestId %s",
            masked,
            response.status,
            answer.get("Code"),
            answer.get("Message"),
            answer.get("RequestId"),
        )
        raise SmsUnavailable()
    log.info("SMS to %s sent (template %s, BizId %s)", masked, template, answer.get("BizId"))
