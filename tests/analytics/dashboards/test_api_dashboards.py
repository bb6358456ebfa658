"""/api/v1/questions and /api/v1/dashboards on the two-site warehouse built by the real ETL."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.semantic.cube_world import Built
from conftest import PASSWORD, MakeUser
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.warehouse import connect
from maintainpro.core.users import Role
from support import bearer

BY_SITE = {
    "measures": ["WorkOrders.count"],
    "dimensions": ["Assets.site"],
    "order": {"Assets.site": "asc"},
}
MONTHLY = {
    "measures": ["WorkOrders.count"],
    "timeDimensions": [
        {
            "dimension": "WorkOrders.createdAt",
            "granularity": "month",
            "dateRange": ["2025-01-01", "2027-12-31"],
        }
    ],
}
SCRIPT = "<script>alert(1)</script>"
PREVIEW = "/api/v1/questions/preview"


def _per_site(built: Built) -> dict[str, int]:
    connection = connect(built.path, read_only=True)
    try:
        rows = connection.execute(
            "SELECT a.site_code, count(*) FROM fact_work_order w"
            " JOIN dim_asset a USING (asset_key) GROUP BY 1"
        ).fetchall()
    finally:
        connection.close()
    return {str(site): int(count) for site, count in rows}


def _save(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Work by site", "query": BY_SITE, "chart": "bar", **fields}
    response = client.post("/api/v1/questions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_shared_question_answers_each_site_user_with_its_own_rows(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str], built: Built
) -> None:
    question = _save(client, admin_headers, shared_roles=["maintenance_manager"])
    expected = _per_site(built)
    assert set(expected) == {"S1", "S2"}
    everyone = client.post(f"/api/v1/questions/{question['id']}/run", headers=admin_headers)
    assert everyone.status_code == 200, everyone.text
    rows = everyone.json()["answer"]["data"]
    assert {r["Assets.site"]: r["WorkOrders.count"] for r in rows} == expected
    for site_key, code in (("site", "S1"), ("site_b", "S2")):
        _, token = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids[site_key])
        answer = client.post(f"/api/v1/questions/{question['id']}/run", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        data = answer.json()["answer"]["data"]
        assert {r["Assets.site"]: r["WorkOrders.count"] for r in data} == {code: expected[code]}
        exported = client.get(
            f"/api/v1/questions/{question['id']}/export.csv", headers=bearer(token)
        )
        table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert table[1:] == [[code, str(expected[code])]]


def test_questions_are_private_until_shared_with_a_role(
    client: TestClient, make_user: MakeUser, built: Built
) -> None:
    _, analyst = make_user(Role.ANALYST)
    _, tech = make_user(Role.TECHNICIAN)
    _, other_analyst = make_user(Role.ANALYST)
    private = _save(client, bearer(analyst), name="Mine")
    shared = _save(client, bearer(analyst), name="Ours", shared_roles=["technician"])
    listed = client.get("/api/v1/questions", headers=bearer(tech)).json()
    assert [q["id"] for q in listed] == [shared["id"]]
    assert client.get(f"/api/v1/questions/{private['id']}", headers=bearer(tech)).status_code == 404
    run = client.post(f"/api/v1/questions/{private['id']}/run", headers=bearer(other_analyst))
    assert run.status_code == 404
    change = client.put(
        f"/api/v1/questions/{shared['id']}",
        json={"name": "Hijacked", "query": BY_SITE},
        headers=bearer(tech),
    )
    assert change.status_code == 403
    assert (
        client.get(f"/api/v1/questions/{shared['id']}", headers=bearer(tech)).json()["name"]
        == "Ours"
    )


def test_bad_questions_get_a_clear_problem_without_an_echo(
    client: TestClient, admin_headers: dict[str, str], db: Session, built: Built
) -> None:
    cases: list[Any] = [
        {"name": "Q", "query": {"measures": [f"WorkOrders.{SCRIPT}"]}},
        {"name": "Q", "query": {"measures": ["WorkOrders.count"], SCRIPT: 1}},
        {"name": "Q", "query": BY_SITE, "chart": SCRIPT},
        {"name": SCRIPT, "query": BY_SITE},
        {"name": "Q", "query": BY_SITE, SCRIPT: True},
        [SCRIPT],
    ]
    for body in cases:
        response = client.post("/api/v1/questions", json=body, headers=admin_headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "script" not in response.text.lower()
    assert db.scalar(select(func.count()).select_from(SavedQuestion)) == 0


def test_exports_hold_the_answer_as_csv_and_xlsx(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    question = _save(client, admin_headers, query=MONTHLY, chart="line", name="=Monthly")
    answer = client.post(f"/api/v1/questions/{question['id']}/run", headers=admin_headers)
    data = answer.json()["answer"]["data"]
    assert sum(r["WorkOrders.count"] for r in data) == sum(_per_site(built).values())
    text = client.get(f"/api/v1/questions/{question['id']}/export.csv", headers=admin_headers)
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert len(rows) == len(data) + 1
    assert [int(r[1]) for r in rows[1:]] == [r["WorkOrders.count"] for r in data]
    assert [r[0] for r in rows[1:]] == [r["WorkOrders.createdAt.month"] for r in data]
    sheet_file = client.get(
        f"/api/v1/questions/{question['id']}/export.xlsx", headers=admin_headers
    )
    sheet = load_workbook(io.BytesIO(sheet_file.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == len(data) + 1
    assert [v[1] for v in values[1:]] == [r["WorkOrders.count"] for r in data]
    assert sheet.title == "=Monthly"  # a sheet title is not a formula


def test_a_dashboard_refreshes_with_its_date_range_and_round_trips_through_json(
    client: TestClient, admin_headers: dict[str, str], db: Session, built: Built
) -> None:
    monthly = _save(client, admin_headers, query=MONTHLY, chart="line", name="Monthly")
    by_site = _save(client, admin_headers, name="By site")
    layout = [
        {"kind": "question", "question_id": monthly["id"], "x": 0, "y": 0, "w": 6, "h": 4},
        {"kind": "question", "question_id": by_site["id"], "x": 6, "y": 0, "w": 6, "h": 4},
    ]
    body = {"name": "Plant", "layout": layout, "refresh_s": 30}
    created = client.post("/api/v1/dashboards", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    board = created.json()
    refreshed = client.post(f"/api/v1/dashboards/{board['id']}/refresh", headers=admin_headers)
    assert refreshed.status_code == 200, refreshed.text
    widgets = refreshed.json()["widgets"]
    full = sum(r["WorkOrders.count"] for r in widgets[str(monthly["id"])]["answer"]["data"])
    assert full == sum(_per_site(built).values())
    # A date range before any work order: the time-bound question is empty, the other is not.
    narrowed = client.post(
        f"/api/v1/dashboards/{board['id']}/refresh",
        json={"dateRange": ["2020-01-01", "2020-01-31"]},
        headers=admin_headers,
    ).json()["widgets"]
    assert narrowed[str(monthly["id"])]["answer"]["data"] == []
    assert narrowed[str(by_site["id"])]["answer"]["data"] != []

    exported = client.get(f"/api/v1/dashboards/{board['id']}/export", headers=admin_headers)
    document = exported.json()
    assert document["format"] == "maintainpro.dashboard"
    assert [i["question"] for i in document["dashboard"]["layout"]] == ["q1", "q2"]
    imported = client.post("/api/v1/dashboards/import", json=document, headers=admin_headers)
    assert imported.status_code == 201, imported.text
    result = imported.json()
    assert set(result["questions"]) == {"q1", "q2"}
    assert not set(result["questions"].values()) & {monthly["id"], by_site["id"]}
    again = client.get(
        f"/api/v1/dashboards/{result['dashboard']['id']}/export", headers=admin_headers
    ).json()
    assert again == document


def test_hostile_imports_are_refused_and_nothing_is_saved(
    client: TestClient, admin_headers: dict[str, str], db: Session, built: Built
) -> None:
    question = _save(client, admin_headers)
    board = client.post(
        "/api/v1/dashboards",
        json={
            "name": "B",
            "layout": [{"kind": "question", "question_id": question["id"], "x": 0, "y": 0, "w": 6}],
        },
        headers=admin_headers,
    ).json()
    good = client.get(f"/api/v1/dashboards/{board['id']}/export", headers=admin_headers).json()
    before = (
        db.scalar(select(func.count()).select_from(SavedQuestion)),
        db.scalar(select(func.count()).select_from(Dashboard)),
    )
    bad_ref = {
        **good,
        "dashboard": {
            **good["dashboard"],
            "layout": [{**good["dashboard"]["layout"][0], "question": "q9"}],
        },
    }
    second_bad_query = {
        **good,
        "questions": [
            *good["questions"],
            {"ref": "q2", "name": "X", "query": {"measures": ["Nope.count"]}},
        ],
        "dashboard": {
            **good["dashboard"],
            "layout": [
                *good["dashboard"]["layout"],
                {"kind": "question", "question": "q2", "x": 6, "y": 0, "w": 6, "h": 4},
            ],
        },
    }
    cases: list[Any] = [
        {**good, "format": SCRIPT},
        {**good, "version": 2},
        bad_ref,
        {**good, "questions": [*good["questions"], {**good["questions"][0], "ref": "q7"}]},
        second_bad_query,
        {
            **good,
            "dashboard": {
                **good["dashboard"],
                "layout": [{"kind": "sensors", "sensor_ids": [999_999], "x": 0, "y": 0}],
            },
            "questions": [],
        },
        {**good, SCRIPT: 1},
        [1, 2, 3],
    ]
    for document in cases:
        response = client.post("/api/v1/dashboards/import", json=document, headers=admin_headers)
        assert response.status_code == 422, (document, response.text)
        assert "script" not in response.text.lower()
    db.expire_all()
    after = (
        db.scalar(select(func.count()).select_from(SavedQuestion)),
        db.scalar(select(func.count()).select_from(Dashboard)),
    )
    assert after == before


def test_a_question_on_a_dashboard_cannot_be_deleted_and_others_may_not_see_the_board(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str], built: Built
) -> None:
    question = _save(client, admin_headers)
    board = client.post(
        "/api/v1/dashboards",
        json={
            "name": "B",
            "layout": [{"kind": "question", "question_id": question["id"], "x": 0, "y": 0}],
        },
        headers=admin_headers,
    ).json()
    gone = client.delete(f"/api/v1/questions/{question['id']}", headers=admin_headers)
    assert gone.status_code == 409
    _, tech = make_user(Role.TECHNICIAN)
    assert client.get(f"/api/v1/dashboards/{board['id']}", headers=bearer(tech)).status_code == 404
    assert client.get("/api/v1/dashboards", headers=bearer(tech)).json() == []
    # A dashboard may only show questions its owner may open.
    _, analyst = make_user(Role.ANALYST)
    refused = client.post(
        "/api/v1/dashboards",
        json={
            "name": "Mine",
            "layout": [{"kind": "question", "question_id": question["id"], "x": 0, "y": 0}],
        },
        headers=bearer(analyst),
    )
    assert refused.status_code == 422
    assert (
        client.delete(f"/api/v1/dashboards/{board['id']}", headers=admin_headers).status_code == 204
    )
    assert (
        client.delete(f"/api/v1/questions/{question['id']}", headers=admin_headers).status_code
        == 204
    )


def test_a_page_session_must_send_its_csrf_token_to_change_anything(
    client: TestClient, make_user: MakeUser, built: Built
) -> None:
    user, _ = make_user(Role.ANALYST)
    login = client.get("/login")
    token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    signed = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    page = client.get("/analytics/questions/new")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    body = {"name": "From the page", "query": BY_SITE}
    assert client.post("/api/v1/questions", json=body).status_code == 403
    saved = client.post("/api/v1/questions", json=body, headers={"X-CSRF-Token": csrf})
    assert saved.status_code == 201, saved.text
    assert client.get("/api/v1/questions/meta").json()["cubes"]


def test_a_refused_filter_or_time_range_is_named_by_its_place(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    good = {"member": "WorkOrders.type", "operator": "equals", "values": ["corrective"]}
    not_a_number = {"member": "WorkOrders.count", "operator": "gt", "values": ["many"]}
    cases = [
        ({**BY_SITE, "filters": [good, not_a_number]}, "filters[1]: "),
        ({**BY_SITE, "filters": [{**good, "operator": "gt"}, good]}, "filters[0]: "),
        (
            {**MONTHLY, "timeDimensions": [{**MONTHLY["timeDimensions"][0], "dateRange": "soon"}]},
            "timeDimensions[0]: ",
        ),
    ]
    for query, place in cases:
        preview = client.post(
            "/api/v1/questions/preview", json={"query": query}, headers=admin_headers
        )
        assert preview.status_code == 422, preview.text
        assert preview.json()["detail"].startswith(place), preview.text
        saved = client.post(
            "/api/v1/questions", json={"name": "Q", "query": query}, headers=admin_headers
        )
        assert saved.status_code == 422
        assert saved.json()["detail"] == preview.json()["detail"]
    # A query wrong outside its filters is not pinned on a filter.
    unknown = {"measures": ["WorkOrders.nope"], "filters": [good]}
    answer = client.post(
        "/api/v1/questions/preview", json={"query": unknown}, headers=admin_headers
    )
    assert answer.json()["detail"] == "unknown measure WorkOrders.nope"
    # Both rows right: the preview answers with both applied.
    both = {**BY_SITE, "filters": [good, {**not_a_number, "values": ["0"]}]}
    ok = client.post(PREVIEW, json={"query": both}, headers=admin_headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["query"]["filters"] != []


def test_a_refresh_interval_is_off_or_at_least_five_seconds(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    for seconds, status in ((0, 201), (3, 422), (5, 201), (86_401, 422)):
        body = {"name": f"Every {seconds}", "refresh_s": seconds}
        response = client.post("/api/v1/dashboards", json=body, headers=admin_headers)
        assert response.status_code == status, (seconds, response.text)
        if status == 422:
            assert "refresh_s" in response.json()["detail"]


def test_a_refresh_uses_the_saved_range_unless_told_otherwise(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    monthly = _save(client, admin_headers, query=MONTHLY, chart="line", name="Monthly")
    layout = [{"kind": "question", "question_id": monthly["id"], "x": 0, "y": 0}]
    body = {"name": "Old", "layout": layout, "filters": {"dateRange": ["2020-01-01", "2020-01-31"]}}
    board = client.post("/api/v1/dashboards", json=body, headers=admin_headers).json()
    url = f"/api/v1/dashboards/{board['id']}/refresh"
    saved = client.post(url, headers=admin_headers).json()
    assert saved["dateRange"] == ["2020-01-01", "2020-01-31"]
    assert saved["widgets"][str(monthly["id"])]["answer"]["data"] == []
    # null: each question's own range (MONTHLY covers every work order).
    own = client.post(url, json={"dateRange": None}, headers=admin_headers).json()
    assert own["dateRange"] is None
    rows = own["widgets"][str(monthly["id"])]["answer"]["data"]
    assert sum(r["WorkOrders.count"] for r in rows) == sum(_per_site(built).values())
    bad = client.post(url, json={"dateRange": "whenever"}, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["detail"] == "filters.dateRange is not a date range the model reads"


def test_an_import_says_what_is_wrong(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    question = _save(client, admin_headers)
    layout = [{"kind": "question", "question_id": question["id"], "x": 0, "y": 0}]
    board = client.post(
        "/api/v1/dashboards", json={"name": "B", "layout": layout}, headers=admin_headers
    ).json()
    good = client.get(f"/api/v1/dashboards/{board['id']}/export", headers=admin_headers).json()
    dashboard = good["dashboard"]
    cases: list[tuple[Any, str]] = [
        (
            {"format": "csv"},
            "this is not a dashboard export (format must be maintainpro.dashboard)",
        ),
        ({**good, "dashboard": {**dashboard, "refresh_s": 2}}, "dashboard.refresh_s: "),
        (
            {**good, "dashboard": {**dashboard, "layout": [{**dashboard["layout"][0], "w": 13}]}},
            "dashboard.layout[0].w: ",
        ),
        (
            {**good, "dashboard": {**dashboard, "layout": [{**dashboard["layout"][0], "x": 10}]}},
            "layout[0] reaches past column 12",
        ),
        (
            {**good, "dashboard": {**dashboard, "layout": []}},
            "questions[0] is on no item of the layout",
        ),
    ]
    for document, message in cases:
        response = client.post("/api/v1/dashboards/import", json=document, headers=admin_headers)
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"], response.text


# ------------------------------------------------------------------ member filters and the grid

SPEND = {"measures": ["Spend.amount", "Spend.lines"]}
ASSETS_BY_SITE = {
    "measures": ["Assets.count"],
    "dimensions": ["Assets.site"],
    "order": {"Assets.site": "asc"},
}


def _site_filter(*codes: str, operator: str = "equals") -> dict[str, Any]:
    return {"member": "Sites.code", "operator": operator, "values": list(codes)}


def _board_of(
    client: TestClient, headers: dict[str, str], questions: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    layout = [
        {"kind": "question", "question_id": q["id"], "x": 0, "y": 4 * i, "w": 6, "h": 4}
        for i, q in enumerate(questions)
    ]
    body = {"name": "Filtered", "layout": layout, **fields}
    response = client.post("/api/v1/dashboards", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _sites_of(widget: dict[str, Any], key: str = "Assets.site") -> dict[str, int]:
    rows = widget["answer"]["data"]
    return {r[key]: int(r[next(k for k in r if k != key)]) for r in rows}


def test_member_filters_are_checked_when_saved_with_clear_messages(
    client: TestClient,
    make_user: MakeUser,
    admin_headers: dict[str, str],
    db: Session,
    built: Built,
) -> None:
    good = _site_filter("S1")
    cases: list[tuple[Any, str]] = [
        ([{**good, "member": "WorkOrders.type"}], "filters.members[0].member is not a shared"),
        ([{**good, "member": "Assets.installDate"}], "filters.members[0].member is not a shared"),
        ([{**good, "member": "Sites.id"}], "filters.members[0].member is not a shared"),
        ([{**good, "member": f"Sites.{SCRIPT}"}], "filters.members[0].member is not a shared"),
        ([good, {**good, "values": ["S2"]}], "filters.members[1] filters a member an earlier"),
        ([{**good, "values": []}], "filters.members[0].values: "),
        ([{**good, "operator": "gt"}], "filters.members[0].operator: "),
        ([{**good, SCRIPT: 1}], "filters.members[0].(not shown): "),
        (
            [{"member": "Suppliers.preferred", "values": ["maybe"]}],
            "filters.members[0]: a value compared with a yes/no dimension is true or false",
        ),
        ([{**good, "member": f"Parts.x{i}"} for i in range(9)], "filters.members: "),
    ]
    for members, message in cases:
        body = {"name": "F", "filters": {"members": members}}
        response = client.post("/api/v1/dashboards", json=body, headers=admin_headers)
        assert response.status_code == 422, (members, response.text)
        assert message in response.json()["detail"], (members, response.text)
        assert "script" not in response.text.lower()
    # A technician may not read suppliers: a filter on them is refused as forbidden.
    _, tech = make_user(Role.TECHNICIAN)
    body = {"name": "F", "filters": {"members": [{"member": "Suppliers.code", "values": ["X"]}]}}
    forbidden = client.post("/api/v1/dashboards", json=body, headers=bearer(tech))
    assert forbidden.status_code == 403, forbidden.text
    assert forbidden.json()["detail"] == "filters.members[0]: you may not read the cube Suppliers"
    assert db.scalar(select(func.count()).select_from(Dashboard)) == 0
    # A good one is stored as sent (the operator filled in), and offered to the page.
    saved = client.post(
        "/api/v1/dashboards",
        json={"name": "F", "filters": {"members": [{"member": "Sites.code", "values": ["S1"]}]}},
        headers=admin_headers,
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["filters"] == {"members": [good]}
    opened = client.get(f"/api/v1/dashboards/{saved.json()['id']}", headers=admin_headers).json()
    offered = {m["member"] for m in opened["filter_members"]}
    assert {"Sites.code", "Sites.name", "Assets.asset", "Assets.name", "Parts.category"} <= offered
    assert not offered & {"WorkOrders.type", "Sites.id", "Assets.installDate"}
    # Suppliers are offered to the admin, not to a technician (who may not read them).
    assert "Suppliers.code" in offered
    tech_board = client.post("/api/v1/dashboards", json={"name": "T"}, headers=bearer(tech)).json()
    tech_opened = client.get(f"/api/v1/dashboards/{tech_board['id']}", headers=bearer(tech)).json()
    tech_offered = {m["member"] for m in tech_opened["filter_members"]}
    assert "Sites.code" in tech_offered
    assert not any(m.startswith("Suppliers.") for m in tech_offered)


def test_a_site_filter_narrows_the_questions_it_applies_to_and_notes_the_others(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    expected = _per_site(built)
    work = _save(client, admin_headers, name="Work by site")
    assets = _save(client, admin_headers, name="Assets by site", query=ASSETS_BY_SITE)
    spend = _save(client, admin_headers, name="Spend", query=SPEND, chart="table")
    board = _board_of(
        client, admin_headers, [work, assets, spend], filters={"members": [_site_filter("S2")]}
    )
    url = f"/api/v1/dashboards/{board['id']}/refresh"
    unfiltered_assets = client.post(
        f"/api/v1/questions/{assets['id']}/run", headers=admin_headers
    ).json()["answer"]
    unfiltered_spend = client.post(
        f"/api/v1/questions/{spend['id']}/run", headers=admin_headers
    ).json()["answer"]
    assert {r["Assets.site"] for r in unfiltered_assets["data"]} == {"S1", "S2"}

    saved = client.post(url, headers=admin_headers)
    assert saved.status_code == 200, saved.text
    result = saved.json()
    assert result["members"] == [_site_filter("S2")]
    widgets = result["widgets"]
    assert _sites_of(widgets[str(work["id"])]) == {"S2": expected["S2"]}
    assert widgets[str(work["id"])]["notApplicable"] == []
    # Assets has no join to Sites: the filter goes through the same site code, Assets.site.
    assert {r["Assets.site"] for r in widgets[str(assets["id"])]["answer"]["data"]} == {"S2"}
    assert widgets[str(assets["id"])]["notApplicable"] == []
    # Spend reaches no site: it says so and its figures are the question's own.
    assert widgets[str(spend["id"])]["notApplicable"] == ["Sites.code"]
    assert widgets[str(spend["id"])]["answer"]["data"] == unfiltered_spend["data"]

    # The viewer's own filters for one refresh: none, then by site name, then "not S2".
    none = client.post(url, json={"members": []}, headers=admin_headers).json()["widgets"]
    assert _sites_of(none[str(work["id"])]) == expected
    by_name = client.post(
        url,
        json={"members": [{"member": "Sites.name", "values": ["Second plant"]}]},
        headers=admin_headers,
    ).json()["widgets"]
    assert _sites_of(by_name[str(work["id"])]) == {"S2": expected["S2"]}
    assert by_name[str(assets["id"])]["notApplicable"] == ["Sites.name"]
    assert by_name[str(assets["id"])]["answer"]["data"] == unfiltered_assets["data"]
    others = client.post(
        url, json={"members": [_site_filter("S2", operator="notEquals")]}, headers=admin_headers
    ).json()["widgets"]
    assert _sites_of(others[str(work["id"])]) == {"S1": expected["S1"]}
    # A viewer's filter is checked like a saved one; the saved ones stay as they were.
    not_shared = {"members": [{"member": "WorkOrders.type", "values": ["x"]}]}
    bad = client.post(url, json=not_shared, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("filters.members[0].member is not a shared dimension")
    extra = client.post(url, json={"members": [], SCRIPT: 1}, headers=admin_headers)
    assert extra.status_code == 422
    assert "script" not in extra.text.lower()
    again = client.get(f"/api/v1/dashboards/{board['id']}", headers=admin_headers).json()
    assert again["filters"] == {"members": [_site_filter("S2")]}


def test_a_filter_never_widens_a_site_bound_viewers_scope(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str], built: Built
) -> None:
    expected = _per_site(built)
    work = _save(client, admin_headers, shared_roles=["maintenance_manager"])
    board = _board_of(
        client,
        admin_headers,
        [work],
        filters={"members": [_site_filter("S2")]},
        shared_roles=["maintenance_manager"],
    )
    url = f"/api/v1/dashboards/{board['id']}/refresh"
    _, token = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids["site"])
    viewer = bearer(token)
    # The saved filter names the other site: the S1 planner sees nothing, not S2's rows.
    saved = client.post(url, headers=viewer).json()["widgets"][str(work["id"])]
    assert saved["answer"]["data"] == []
    own = {"S1": expected["S1"]}
    attempts: list[tuple[list[dict[str, Any]], dict[str, int]]] = [
        ([], own),
        ([_site_filter("S1", "S2")], own),
        ([_site_filter("S2", operator="notEquals")], own),
        ([_site_filter("S1", operator="notEquals")], {}),
        ([{"member": "Assets.site", "operator": "equals", "values": ["S1", "S2"]}], own),
    ]
    for members, visible in attempts:
        response = client.post(url, json={"members": members}, headers=viewer)
        assert response.status_code == 200, response.text
        shown = _sites_of(response.json()["widgets"][str(work["id"])])
        assert shown == visible, (members, shown)
    # The admin, unrestricted, sees S2 through the same saved filter.
    admin_view = client.post(url, headers=admin_headers).json()["widgets"][str(work["id"])]
    assert _sites_of(admin_view) == {"S2": expected["S2"]}


def test_member_filters_travel_in_the_json_export_and_are_checked_on_import(
    client: TestClient, admin_headers: dict[str, str], db: Session, built: Built
) -> None:
    work = _save(client, admin_headers)
    filters = {
        "dateRange": "last 12 months",
        "members": [
            _site_filter("S1", "S2"),
            {"member": "Assets.name", "operator": "notEquals", "values": ["Boiler"]},
        ],
    }
    board = _board_of(client, admin_headers, [work], filters=filters)
    document = client.get(f"/api/v1/dashboards/{board['id']}/export", headers=admin_headers).json()
    assert document["dashboard"]["filters"] == filters
    imported = client.post("/api/v1/dashboards/import", json=document, headers=admin_headers)
    assert imported.status_code == 201, imported.text
    assert imported.json()["dashboard"]["filters"] == filters
    new_id = imported.json()["dashboard"]["id"]
    again = client.get(f"/api/v1/dashboards/{new_id}/export", headers=admin_headers).json()
    assert again == document
    before = db.scalar(select(func.count()).select_from(Dashboard))
    bad_filters = {**filters, "members": [{"member": "WorkOrders.type", "values": ["x"]}]}
    bad = {**document, "dashboard": {**document["dashboard"], "filters": bad_filters}}
    refused = client.post("/api/v1/dashboards/import", json=bad, headers=admin_headers)
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("filters.members[0].member is not a shared")
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Dashboard)) == before
    assert db.scalar(select(func.count()).select_from(SavedQuestion)) == 2


def test_the_owner_moves_and_resizes_widgets_within_the_grid(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str], built: Built
) -> None:
    first = _save(client, admin_headers, name="First", shared_roles=["technician"])
    second = _save(client, admin_headers, name="Second", shared_roles=["technician"])
    board = _board_of(client, admin_headers, [first, second], shared_roles=["technician"])
    url = f"/api/v1/dashboards/{board['id']}"
    layout = board["layout"]
    assert [(i["x"], i["y"], i["w"], i["h"]) for i in layout] == [(0, 0, 6, 4), (0, 4, 6, 4)]

    def put(items: list[dict[str, Any]], headers: dict[str, str] = admin_headers) -> Any:
        body = {"name": board["name"], "layout": items, "shared_roles": ["technician"]}
        return client.put(url, json=body, headers=headers)

    moved = [layout[0], {**layout[1], "x": 6, "y": 0}]
    assert put(moved).status_code == 200
    wider = [{**moved[0], "w": 7}, moved[1]]
    response = put(wider)
    assert response.status_code == 422
    assert response.json()["detail"] == "layout[1] overlaps an earlier item"
    past = [moved[0], {**moved[1], "w": 7}]
    assert put(past).json()["detail"] == "layout[1] reaches past column 12"
    bottom = [moved[0], {**moved[1], "y": 196, "h": 6}]
    assert put(bottom).json()["detail"] == "layout[1] reaches past row 200"
    resized = [{**moved[0], "h": 6}, {**moved[1], "w": 4, "x": 8}]
    assert put(resized).status_code == 200
    saved = client.get(url, headers=admin_headers).json()["layout"]
    assert [(i["x"], i["y"], i["w"], i["h"]) for i in saved] == [(0, 0, 6, 6), (8, 0, 4, 4)]
    # Someone it is shared with sees it but may not move anything.
    _, tech = make_user(Role.TECHNICIAN)
    assert put(moved, bearer(tech)).status_code == 403
