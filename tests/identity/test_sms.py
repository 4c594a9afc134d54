"""The SMS interface: the log backend for development, and the Alibaba Cloud backend against a
local server that checks every request's signature the way the provider documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

import config
from app.identity import sms
from app.identity.models import SmsCode
from tests.conftest import count_rows

KEY_ID = "LTAI5tTestKeyId"
SECRET = "test-secret/with+odd=chars"
SIGN_NAME = "职训通"
TEMPLATES = "password_reset=SMS_100000001,register=SMS_100000002,notice=SMS_100000003"
# The server refuses this template the way the provider refuses an over-limit phone.
LIMITED_TEMPLATE = "SMS_100000003"


def rfc3986(value: str) -> str:
    """The documented encoding, written out on its own: unreserved characters kept, every
    other UTF-8 byte as %XY in upper case."""
    unreserved = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
    return "".join(
        chr(byte) if chr(byte) in unreserved else f"%{byte:02X}" for byte in value.encode()
    )


@dataclass
class FakeDysms:
    """What the fake provider received, and how it should answer."""

    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    status: int | None = None  # force an HTTP status (e.g. 500)


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in pairs)
    to_sign = f"{method}&{rfc3986('/')}&{rfc3986(canonical)}"
    mac = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def make_handler(state: FakeDysms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length).decode()
            params = dict(parse_qsl(raw, keep_blank_values=True, strict_parsing=True))
            state.requests.append(params)
            if state.delay_s:
                time.sleep(state.delay_s)
            request_id = f"REQ-{len(state.requests)}"
            if state.status:
                self.answer(state.status, {"Code": "ServiceUnavailable", "RequestId": request_id})
                return
            for name in (
                "AccessKeyId",
                "Action",
                "Format",
                "PhoneNumbers",
                "SignName",
                "SignatureMethod",
                "SignatureNonce",
                "SignatureVersion",
                "TemplateCode",
                "TemplateParam",
                "Timestamp",
                "Version",
                "Signature",
            ):
                if name not in params:
                    self.answer(400, {"Code": "MissingParameter", "Message": name})
                    return
            if (
                params["Action"] != "SendSms"
                or params["Version"] != "2017-05-25"
                or params["SignatureMethod"] != "HMAC-SHA1"
                or params["SignatureVersion"] != "1.0"
                or not time.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
            ):
                self.answer(400, {"Code": "InvalidParameter", "RequestId": request_id})
                return
            if params["SignatureNonce"] in state.nonces:
                self.answer(400, {"Code": "SignatureNonceUsed", "RequestId": request_id})
                return
            state.nonces.add(params["SignatureNonce"])
            if params["AccessKeyId"] != KEY_ID or not hmac.compare_digest(
                params["Signature"], expected_signature("POST", params, SECRET)
            ):
                self.answer(
                    400,
                    {
                        "Code": "SignatureDoesNotMatch",
                        "Message": "Specified signature is not matched with our calculation.",
                        "RequestId": request_id,
                    },
                )
                return
            if params["TemplateCode"] == LIMITED_TEMPLATE:
                self.answer(
                    200,
                    {
                        "Code": "isv.BUSINESS_LIMIT_CONTROL",
                        "Message": "触发号码天级流控Permits:10",
                        "RequestId": request_id,
                    },
                )
                return
            self.answer(
                200,
                {
                    "Code": "OK",
                    "Message": "OK",
                    "BizId": "900619746936498440^0",
                    "RequestId": request_id,
                },
            )

    return Handler


@pytest.fixture
def dysms() -> Iterator[FakeDysms]:
    state = FakeDysms()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def aliyun_settings(url: str, **changes: Any) -> dict[str, Any]:
    settings = {
        "SMS_BACKEND": "aliyun",
        "SMS_ALIYUN_ENDPOINT": url,
        "SMS_ALIYUN_ACCESS_KEY_ID": KEY_ID,
        "SMS_ALIYUN_ACCESS_KEY_SECRET": SECRET,
        "SMS_ALIYUN_SIGN_NAME": SIGN_NAME,
        "SMS_ALIYUN_TEMPLATES": TEMPLATES,
        "SMS_TIMEOUT_S": 2.0,
    }
    settings.update(changes)
    return settings


# --- the provider's signature --------------------------------------------------------------


def test_percent_encoding_is_the_documented_rfc3986_form():
    assert sms.percent_encode("a b*c~d/é+=&") == "a%20b%2Ac~d%2F%C3%A9%2B%3D%26"
    assert sms.percent_encode("a b*c~d/é+=&") == rfc3986("a b*c~d/é+=&")


def test_signature_matches_an_independent_computation():
    params = {"Action": "SendSms", "TemplateParam": '{"code":"042917"}', "SignName": "职训通"}
    assert sms.aliyun_signature("POST", params, SECRET) == expected_signature(
        "POST", params, SECRET
    )
    # Signature itself is never signed, and the order of parameters does not matter.
    with_signature = {**dict(reversed(params.items())), "Signature": "x"}
    assert sms.aliyun_signature("POST", with_signature, SECRET) == expected_signature(
        "POST", params, SECRET
    )


# --- the Alibaba Cloud backend -------------------------------------------------------------


def test_aliyun_sends_a_signed_request_the_provider_accepts(dysms, caplog):
    caplog.set_level(logging.INFO, logger="app.identity.sms")
    sms.send("13912345678", "register", {"code": "042917"}, config=aliyun_settings(dysms.url))
    sent = dysms.requests[-1]
    assert sent["PhoneNumbers"] == "13912345678"
    assert sent["SignName"] == SIGN_NAME
    assert sent["TemplateCode"] == "SMS_100000002"
    assert json.loads(sent["TemplateParam"]) == {"code": "042917"}
    # The log names the phone masked and never the code.
    assert "139****5678" in caplog.text
    assert "13912345678" not in caplog.text and "042917" not in caplog.text


def test_every_message_has_its_own_nonce(dysms):
    settings = aliyun_settings(dysms.url)
    for _ in range(3):
        sms.send("13912345678", "password_reset", {"code": "111111"}, config=settings)
    assert len({r["SignatureNonce"] for r in dysms.requests}) == 3


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"SMS_ALIYUN_ACCESS_KEY_SECRET": "not-the-secret"}, None),  # SignatureDoesNotMatch
        ({}, 500),  # the provider's server fails
    ],
)
def test_aliyun_refusals_and_http_errors_raise_sms_unavailable(dysms, changes, status):
    dysms.status = status
    with pytest.raises(sms.SmsUnavailable) as raised:
        sms.send(
            "13912345678", "register", {"code": "1"}, config=aliyun_settings(dysms.url, **changes)
        )
    assert raised.value.status == 503 and raised.value.code == "sms_unavailable"
    assert len(dysms.requests) == 1


def test_a_business_error_code_is_a_failure_even_with_http_200(dysms, caplog):
    with pytest.raises(sms.SmsUnavailable):
        sms.send("13912345678", "notice", {"name": "x"}, config=aliyun_settings(dysms.url))
    assert "isv.BUSINESS_LIMIT_CONTROL" in caplog.text


def test_a_provider_that_does_not_answer_in_time_raises_sms_unavailable(dysms):
    dysms.delay_s = 1.5
    started = time.monotonic()
    with pytest.raises(sms.SmsUnavailable):
        sms.send(
            "13912345678",
            "register",
            {"code": "1"},
            config=aliyun_settings(dysms.url, SMS_TIMEOUT_S=0.3),
        )
    assert time.monotonic() - started < 1.4


def test_an_unreachable_provider_raises_sms_unavailable():
    with pytest.raises(sms.SmsUnavailable):
        sms.send(
            "13912345678", "register", {"code": "1"}, config=aliyun_settings("http://127.0.0.1:9/")
        )


def test_a_kind_without_a_template_is_not_enabled_and_not_sent(dysms):
    settings = aliyun_settings(dysms.url)
    assert sms.enabled("register", config=settings)
    assert not sms.enabled("appeal_decided", config=settings)
    with pytest.raises(sms.SmsUnavailable):
        sms.send("13912345678", "appeal_decided", {}, config=settings)
    assert dysms.requests == []


# --- the log backend and "off" -------------------------------------------------------------


def test_log_backend_writes_the_code_with_the_phone_masked(caplog):
    caplog.set_level(logging.INFO, logger="app.identity.sms")
    sms.send("13912345678", "register", {"code": "042917"}, config={"SMS_BACKEND": "log"})
    assert "042917" in caplog.text and "139****5678" in caplog.text
    assert "13912345678" not in caplog.text
    assert sms.enabled("anything", config={"SMS_BACKEND": "log"})


def test_off_sends_nothing():
    assert not sms.enabled(config={"SMS_BACKEND": ""})
    with pytest.raises(sms.SmsUnavailable):
        sms.send("13912345678", "register", {"code": "1"}, config={"SMS_BACKEND": ""})


def test_a_failing_provider_answers_503_and_stores_no_code(client, fresh_app, dysms, monkeypatch):
    for name, value in aliyun_settings(dysms.url, SMS_ALIYUN_ACCESS_KEY_SECRET="wrong").items():
        monkeypatch.setitem(fresh_app.config, name, value)
    response = client.post("/api/v1/auth/phone-code", json={"phone": "13912345678"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "sms_unavailable"
    assert response.headers["Retry-After"]
    assert count_rows(fresh_app, SmsCode) == 0


# --- settings --------------------------------------------------------------------------------


@pytest.fixture
def dev_settings(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    return config.DevelopmentConfig()


def test_development_logs_codes_and_the_base_profile_has_sms_off(dev_settings):
    assert dev_settings.SMS_BACKEND == "log"
    assert config.Config.SMS_BACKEND == ""
    config.check_settings(dev_settings)


def test_production_refuses_the_log_backend(dev_settings):
    dev_settings.ENV_NAME = "production"
    dev_settings.PUBLIC_BASE_URL = "https://peixun.example.gov.cn"
    for name in ("SECRET_KEY", "DATA_KEY", "AUDIT_KEY"):
        setattr(dev_settings, name, name * 8)
    dev_settings.SMS_BACKEND = "log"
    with pytest.raises(config.ConfigError, match="SMS_BACKEND=log"):
        config.check_settings(dev_settings)
    dev_settings.SMS_BACKEND = ""
    config.check_settings(dev_settings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SMS_BACKEND": "twilio"}, "SMS_BACKEND must be"),
        ({"SMS_ALIYUN_ACCESS_KEY_SECRET": None}, "SMS_ALIYUN_ACCESS_KEY_SECRET must be set"),
        ({"SMS_ALIYUN_SIGN_NAME": None}, "SMS_ALIYUN_SIGN_NAME must be set"),
        ({"SMS_ALIYUN_TEMPLATES": "register=SMS_2"}, "template for password_reset"),
        ({"SMS_ALIYUN_TEMPLATES": "register"}, "kind=TemplateCode"),
        ({"SMS_ALIYUN_ENDPOINT": "dysmsapi.aliyuncs.com"}, "SMS_ALIYUN_ENDPOINT"),
        ({"SMS_CODE_TTL_S": 0}, "SMS_CODE_TTL_S must be more than 0"),
        ({"SMS_CODE_MAX_PER_PHONE": 0}, "SMS_CODE_MAX_PER_PHONE must be more than 0"),
    ],
)
def test_aliyun_settings_are_checked_at_start(dev_settings, changes, message):
    for name, value in aliyun_settings("https://dysmsapi.aliyuncs.com/").items():
        setattr(dev_settings, name, value)
    config.check_settings(dev_settings)
    for name, value in changes.items():
        setattr(dev_settings, name, value)
    with pytest.raises(config.ConfigError, match=message):
        config.check_settings(dev_settings)
