"""Settings: environment, TOML file, and the refusal of weak or missing secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintainpro.config import DEFAULT_DATABASE_URL, ConfigurationError, Settings


def test_defaults_are_embedded_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert settings.cookie_secure


def test_no_secret_outside_demo_refuses_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAINTAINPRO_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="MAINTAINPRO_SECRET_KEY is not set"):
        Settings().checked_for_server()


@pytest.mark.parametrize("weak", ["changeme", "secret", "short-but-random"])
def test_weak_secrets_are_refused(weak: str) -> None:
    with pytest.raises(ConfigurationError, match="too weak"):
        Settings(secret_key=weak).checked_for_server()


def test_demo_mode_makes_a_random_secret() -> None:
    first = Settings(demo=True).checked_for_server().secret()
    second = Settings(demo=True).checked_for_server().secret()
    assert len(first) >= 32
    assert first != second


def test_environment_and_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('database_url = "postgresql+psycopg://hub@db/maintainpro"\nport = 9000\n')
    monkeypatch.setenv("MAINTAINPRO_CONFIG", str(config))
    monkeypatch.setenv("MAINTAINPRO_PORT", "9100")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://hub@db/maintainpro"
    assert settings.port == 9100, "the environment wins over the file"
    assert not settings.is_sqlite


def test_secret_is_not_in_the_repr() -> None:
    settings = Settings(secret_key="k" * 40)
    assert "k" * 40 not in repr(settings)
