"""Portal pages on the supplier's catalogue: items and prices, price breaks, file upload."""

from __future__ import annotations

from typing import Final

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from maintainpro.api.deps import SessionDep
from maintainpro.supply.catalog_import import ImportReport, LineError
from maintainpro.supply.catalogs import MAX_PRICE_BREAKS, CatalogError, CatalogItem
from maintainpro.web.portal.access import Portal, PortalDep, flash, portal_page, router, take_flash
from maintainpro.web.portal.form_input import FormDep, texts, uploaded, uploaded_name
from maintainpro.web.portal.forms import FormProblems, read_price_breaks
from maintainpro.web.session_auth import CsrfChecked

MAX_CATALOG_BYTES: Final = 4 * 1024 * 1024
FORMATS: Final = {"csv": "csv", "xlsx": "xlsx"}
BLANK_ROWS: Final = 3


@router.get("/portal/catalog")
def catalog_page(request: Request, portal: PortalDep) -> HTMLResponse:
    """The supplier's catalogue items with their price breaks, and the upload form."""
    return _catalog(request, portal, None)


def _catalog(
    request: Request, portal: Portal, report: ImportReport | None, status_code: int = 200
) -> HTMLResponse:
    return portal_page(
        request,
        portal,
        "catalog.html",
        status_code=status_code,
        items=portal.scope.catalog_items(),
        report=report,
        flash=take_flash(request),
    )


def _item_page(
    request: Request,
    portal: Portal,
    item: CatalogItem,
    errors: list[str],
    rows: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    if rows is None:
        rows = [
            (f"{b.min_quantity.normalize():f}", f"{b.unit_price.normalize():f}")
            for b in item.price_breaks
        ]
    free = max(0, min(BLANK_ROWS, MAX_PRICE_BREAKS - len(rows)))
    return portal_page(
        request,
        portal,
        "catalog_item.html",
        status_code=status_code,
        item=item,
        rows=rows + [("", "")] * free,
        changes=portal.scope.price_changes(item.id),
        errors=errors,
        flash=take_flash(request),
    )


@router.get("/portal/catalog/{item_id}")
def catalog_item_page(request: Request, portal: PortalDep, item_id: int) -> HTMLResponse:
    """One item: its terms, price breaks (editable) and price history."""
    return _item_page(request, portal, portal.scope.catalog_item(item_id), [])


@router.post("/portal/catalog/{item_id}/prices", dependencies=[CsrfChecked])
def save_price_breaks(
    request: Request, db: SessionDep, portal: PortalDep, item_id: int, form: FormDep
) -> Response:
    """Replace the item's price breaks; a refused set changes nothing."""
    item = portal.scope.catalog_item(item_id)
    minimums = texts(form, "min_quantity")
    prices = texts(form, "unit_price")
    try:
        breaks = read_price_breaks(minimums, prices)
        changes = portal.scope.set_price_breaks(item.id, breaks, actor_id=portal.user.id)
    except (FormProblems, CatalogError) as exc:
        db.rollback()
        problems = exc.problems if isinstance(exc, FormProblems) else [str(exc)]
        typed = list(zip(minimums, prices, strict=False))
        return _item_page(request, portal, portal.scope.catalog_item(item_id), problems, typed, 422)
    db.commit()
    flash(request, f"{len(changes)} price(s) changed." if changes else "The prices are unchanged.")
    return RedirectResponse(f"/portal/catalog/{item_id}", status_code=303)


@router.post("/portal/catalog/import", dependencies=[CsrfChecked])
def import_catalog_file(
    request: Request, db: SessionDep, portal: PortalDep, form: FormDep
) -> Response:
    """Validate an uploaded CSV/XLSX catalogue like an import; apply it only if all is valid."""
    name = uploaded_name(form, "catalog_file")
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    report = ImportReport()
    try:
        upload = uploaded(form, "catalog_file", MAX_CATALOG_BYTES)
    except FormProblems as exc:
        report.errors.append(LineError(1, None, exc.problems[0]))
        return _catalog(request, portal, report, 413)
    if upload is None or extension not in FORMATS:
        report.errors.append(LineError(1, None, "choose a .csv or .xlsx file"))
        return _catalog(request, portal, report, 422)
    report = portal.scope.import_catalog(
        upload[0], file_format=FORMATS[extension], actor_id=portal.user.id
    )
    if not report.applied:
        db.rollback()
        return _catalog(request, portal, report, 422)
    db.commit()
    flash(
        request,
        f"Catalogue applied: {report.items_created} item(s) added, {report.items_updated} "
        f"updated, {report.price_changes} price(s) changed.",
    )
    return RedirectResponse("/portal/catalog", status_code=303)
