"""The asset page's remaining-useful-life panel: the estimate with its band, sensor, model
version, computation time and forecast failure date; the reason when there is none; and the PM
the estimate pulled forward."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from analytics.ml.ml_plant import NOW, ml_plant
from maintainpro.analytics.ml.registry import ModelRegistry, models_dir
from maintainpro.analytics.ml.training import RUL_TARGET, refresh_rul, rul_forecasts
from maintainpro.config import Settings
from maintainpro.core.users import Role, User
from maintainpro.iot.trends import update_predictions

MakeUser = Callable[..., tuple[User, str]]
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def plant_ids(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """One site of the synthetic ML plant, committed."""
    with session_factory() as session, session.begin():
        return ml_plant(session)


@pytest.fixture
def signed_in(client: TestClient, make_user: MakeUser) -> TestClient:
    """The client signed in as a technician (assets:read)."""
    make_user(Role.TECHNICIAN, username="tess")
    token = CSRF.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": "tess", "password": PASSWORD, "next": "/", "csrf_token": token[1]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return client


def panel(html: str) -> str:
    """The text of the remaining-useful-life panel, tags stripped, spaces collapsed."""
    match = re.search(r'<section class="card" id="rul".*?</section>', html, re.S)
    assert match is not None, "the page has no RUL panel"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split())


def test_the_panel_shows_the_estimate_and_the_pm_it_pulled_forward(
    signed_in: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    plant_ids: dict[str, int],
) -> None:
    propose = settings.model_copy(update={"pm_pull_forward": "propose"})
    estimate = refresh_rul(session_factory, propose, NOW)[0]
    # The trend job with too short a window to fit: only the RUL can pull the PM forward.
    update_predictions(
        session_factory,
        propose,
        NOW,
        days=1,
        min_points=48,
        extra_forecasts=rul_forecasts(models_dir(propose)),
    )
    method = ModelRegistry(models_dir(settings)).live(RUL_TARGET)
    assert method is not None

    page = signed_in.get(f"/assets/{plant_ids['pump']}")
    assert page.status_code == 200
    text = panel(page.text)
    assert text.startswith("Remaining useful life")
    assert f"{estimate.rul_days:.1f} days" in text
    high = "open-ended" if estimate.high_days is None else f"{estimate.high_days:.1f} days"
    assert f"uncertainty band {estimate.low_days:.1f}\N{EN DASH}{high}" in text
    assert f"Forecast failure {estimate.failure_at:%Y-%m-%d %H:%M} UTC" in text
    assert "From sensor Pump vibration S1" in text
    assert f"RUL model v{method.version} (registry id {method.id})" in text
    assert f"Computed {NOW:%Y-%m-%d %H:%M} UTC" in text
    assert (
        f"PM “Pump quarterly service”: proposed to bring forward to "
        f"{estimate.earliest_at:%Y-%m-%d %H:%M} UTC because of this estimate" in text
    )


def test_the_panel_says_why_there_is_no_estimate(
    signed_in: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    plant_ids: dict[str, int],
) -> None:
    before = panel(signed_in.get(f"/assets/{plant_ids['motor']}").text)
    assert "No estimate: the remaining-life job has not run yet." in before

    refresh_rul(session_factory, settings, NOW)
    flat = panel(signed_in.get(f"/assets/{plant_ids['motor']}").text)
    assert "No estimate: no degrading trend: Motor temperature S1 is not rising to" in flat
    assert f"Last computed {NOW:%Y-%m-%d %H:%M} UTC with RUL model v1." in flat
    assert "because of this estimate" not in flat

    idle = panel(signed_in.get(f"/assets/{plant_ids['idle']}").text)
    assert "No estimate: none of its sensors has a critical alert level" in idle
