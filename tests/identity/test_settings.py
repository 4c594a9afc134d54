"""The sign-in, registration and re-authentication settings are checked at start."""

import pytest

import config


@pytest.mark.parametrize(
    "name",
    [
        "REAUTH_S",
        "REGISTER_MAX_PER_ADDRESS",
        "REGISTER_WINDOW_S",
        "LOGIN_MAX_FAILURES",
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        "LOGIN_LOCKOUT_S",
        "TOKEN_TTL_S",
    ],
)
def test_identity_settings_must_be_positive(monkeypatch, tmp_path, name):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    settings = config.DevelopmentConfig()
    config.check_settings(settings)
    setattr(settings, name, 0)
    with pytest.raises(config.ConfigError, match=f"{name} must be more than 0"):
        config.check_settings(settings)
