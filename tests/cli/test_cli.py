"""The command line against a real SQLite file: migrate, users, tokens, refusal to serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from maintainpro.app import create_app
from maintainpro.cli.main import app
from maintainpro.config import Settings
from maintainpro.core.assets import Asset
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.users import User
from maintainpro.demo.plant import seed_demo_plant
from maintainpro.migrate import current_revision, head_revision
from support import bearer

runner = CliRunner()


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", url)
    monkeypatch.delenv("MAINTAINPRO_SECRET_KEY", raising=False)
    return url


def test_help_everywhere() -> None:
    for args in ([], ["db"], ["users"], ["serve", "--help"], ["demo", "--help"]):
        result = runner.invoke(app, [*args, "--help"] if "--help" not in args else args)
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_db_upgrade_then_users_and_a_working_token(db_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = build_engine(db_url)
    assert current_revision(engine) == head_revision()
    assert "up to date" in runner.invoke(app, ["db", "current"]).output

    created = runner.invoke(
        app,
        ["users", "create", "maria", "--role", "maintenance_manager"],
        input="a long passphrase\n",
    )
    assert created.exit_code == 0, created.output
    again = runner.invoke(app, ["users", "create", "maria"], input="a long passphrase\n")
    assert again.exit_code == 1
    assert "exists already" in again.output
    weak = runner.invoke(app, ["users", "create", "bob"], input="short\n")
    assert weak.exit_code == 1

    issued = runner.invoke(app, ["users", "token", "maria", "--name", "script"])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("mpt_")

    settings = Settings(database_url=db_url, secret_key="s" * 40, cookie_secure=False)
    with TestClient(create_app(settings)) as client:
        me = client.get("/api/v1/auth/me", headers=bearer(token))
        assert me.status_code == 200
        assert me.json()["role"] == "maintenance_manager"
        token_id = client.get("/api/v1/auth/tokens", headers=bearer(token)).json()[0]["id"]
        revoked = runner.invoke(app, ["users", "revoke-token", str(token_id)])
        assert revoked.exit_code == 0
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    engine.dispose()


def test_serve_refuses_without_a_secret(db_url: str) -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "MAINTAINPRO_SECRET_KEY is not set" in result.output


def test_serve_refuses_an_unmigrated_database(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAINTAINPRO_SECRET_KEY", "k" * 48)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "db upgrade" in result.output


def test_demo_seed_builds_the_plant_once(db_url: str) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = build_engine(db_url)
    factory = build_session_factory(engine)
    with factory() as session, session.begin():
        assert seed_demo_plant(session, "first-password-1")
    with factory() as session, session.begin():
        assert not seed_demo_plant(session, "second-password-2")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 21
        assert session.scalar(select(func.count()).select_from(User)) == 5
    settings = Settings(database_url=db_url, secret_key="s" * 40, cookie_secure=False)
    with TestClient(create_app(settings)) as client:
        refused = client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": "first-password-1"}
        )
        assert refused.status_code == 401, "the password was reset by the second run"
        token = client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": "second-password-2"}
        ).json()["access_token"]
        assets = client.get("/api/v1/assets?limit=100", headers=bearer(token)).json()
        assert assets["total"] == 21
        assert {"P-101", "AC-301", "CH-301"} <= {a["tag"] for a in assets["items"]}
    engine.dispose()
