"""The OData v4 feed at /odata/: service document, $metadata, entity sets and their $count.

Authentication is an API token, sent as HTTP Basic (any user name, the token as password: what
Power BI, Excel, Tableau and Qlik offer) or as a Bearer token. A set opens with its permission
(``assets:read`` or ``supply:read``, see ``model``) and shows a site-bound user only that site's
rows (``analytics.access``). Every request is recorded, refused ones included.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, TypeVar

import duckdb
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.analytics.access import (
    AccessEvent,
    can_read,
    record_access,
    site_scope,
)
from maintainpro.analytics.access import (
    access_ledger as ledger_of,
)
from maintainpro.analytics.odata.csdl import metadata_document, service_document
from maintainpro.analytics.odata.errors import ODataError
from maintainpro.analytics.odata.feed import count_rows, read_page
from maintainpro.analytics.odata.model import EntitySet, entity_sets
from maintainpro.analytics.odata.paging import CursorStore, unpack_token
from maintainpro.analytics.odata.query import (
    QueryOptions,
    parse_options,
    response_format,
)
from maintainpro.analytics.odata.reader import SharedReader
from maintainpro.analytics.warehouse import WarehouseError, open_read_only, warehouse_file
from maintainpro.api.deps import SessionDep, get_settings
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import (
    TOKEN_PREFIX,
    ApiToken,
    Role,
    User,
    authenticate_token,
    hash_token,
)

DEFAULT_PAGE_SIZE: Final = 10_000
MAX_PAGE_SIZE: Final = 50_000
CHANNEL: Final = "odata"
REALM: Final = 'Basic realm="MaintAInPro OData", charset="UTF-8"'
ODATA_VERSION: Final = {"OData-Version": "4.0"}
_MAX_PAGE_SIZE_PREFERENCE: Final = re.compile(r"(?:odata\.)?maxpagesize\s*=\s*(\d{1,9})", re.I)

router = APIRouter(prefix="/odata", tags=["odata"])


@functools.cache
def _catalogue() -> dict[str, EntitySet]:
    return entity_sets()


@functools.lru_cache(maxsize=32)
def _metadata_for(names: tuple[str, ...]) -> str:
    catalogue = _catalogue()
    return metadata_document(catalogue[n] for n in names)


_STATE_LOCK: Final = threading.Lock()
T = TypeVar("T")


def _on_app(request: Request, name: str, make: Callable[[], T]) -> T:
    """An object kept on the app's state, made on first use."""
    with _STATE_LOCK:
        found = getattr(request.app.state, name, None)
        if found is None:
            found = make()
            setattr(request.app.state, name, found)
        return found


@dataclass
class _Caller:
    """The authenticated caller of one request."""

    user: User
    credential: ApiToken | None
    scope: frozenset[int] | None = field(init=False)

    def __post_init__(self) -> None:
        self.scope = site_scope(self.user)

    def readable(self) -> list[EntitySet]:
        """The entity sets this caller may read (permission and site rule)."""
        return [s for s in _catalogue().values() if self.may_read(s)]

    def may_read(self, entity_set: EntitySet) -> bool:
        """Whether the caller's role opens the set and the site rule lets the caller see it."""
        allowed = bool(entity_set.permissions & self.user.permissions)
        return allowed and can_read(entity_set.site_rule, self.scope)


def _token_from(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    # The token belongs in the password; a tool that only has one field may put it first.
    if not password and username.startswith(TOKEN_PREFIX):
        return username
    return password or None


def _authenticate(request: Request, db: Session) -> _Caller:
    secret = _token_from(request.headers.get("authorization"))
    if secret is None:
        raise ODataError(
            401,
            "Unauthorized",
            "sign in with an API token: HTTP Basic with the token as the password, or Bearer",
        )
    user = authenticate_token(db, secret, utcnow())
    if user is None:
        raise ODataError(401, "Unauthorized", "the token is unknown, expired or revoked")
    if user.role is Role.SUPPLIER:
        # Supplier accounts see their company's data in the portal only, like on the REST API.
        raise ODataError(403, "Forbidden", "supplier accounts use the supplier portal at /portal")
    credential = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    db.commit()  # keeps last_used_at
    return _Caller(user, credential)


def _error_response(error: ODataError) -> JSONResponse:
    response = JSONResponse(
        error.body(), status_code=error.status, headers={**ODATA_VERSION, **error.headers}
    )
    if error.status == 401:
        response.headers.append("WWW-Authenticate", REALM)
        response.headers.append("WWW-Authenticate", 'Bearer realm="maintainpro"')
    return response


def _service_root(request: Request) -> str:
    return str(request.base_url) + "odata/"


def _page_size(request: Request) -> tuple[int, bool]:
    """The page size: the client's odata.maxpagesize preference if any, else the setting."""
    configured = get_settings(request).odata_page_size
    match = _MAX_PAGE_SIZE_PREFERENCE.search(request.headers.get("prefer", ""))
    if match and int(match.group(1)) >= 1:
        return min(int(match.group(1)), MAX_PAGE_SIZE), True
    return max(1, min(configured, MAX_PAGE_SIZE)), False


class _Access:
    """Times a request and records it (rows served, status, error) when it ends."""

    def __init__(self, request: Request, dataset: str) -> None:
        self.request = request
        self.dataset = dataset
        self.started = time.perf_counter()
        self.caller: _Caller | None = None
        self.rows = 0
        self.options = {k: v for k, v in request.query_params.multi_items() if k.startswith("$")}

    def done(self, status: int, error: str | None = None) -> None:
        caller = self.caller
        credential = caller.credential if caller else None
        record_access(
            ledger_of(self.request.app.state),
            AccessEvent(
                channel=CHANNEL,
                dataset=self.dataset,
                user_id=caller.user.id if caller else None,
                username=caller.user.username if caller else None,
                credential_id=credential.id if credential else None,
                credential_name=credential.name if credential else None,
                options=self.options,
                rows=self.rows,
                duration_ms=(time.perf_counter() - self.started) * 1000.0,
                status=status,
                error=error,
            ),
        )


def _served(access: _Access, make: Callable[[], Response]) -> Response:
    """Run a handler body, answering and recording OData errors."""
    try:
        response = make()
    except ODataError as error:
        access.done(error.status, error.message)
        return _error_response(error)
    except Exception as exc:
        access.done(500, type(exc).__name__)
        raise
    access.done(response.status_code)
    return response


def _entity_set(caller: _Caller, name: str) -> EntitySet:
    entity_set = _catalogue().get(name)
    if entity_set is None:
        raise ODataError(404, "NotFound", "no such entity set")
    if not entity_set.permissions & caller.user.permissions:
        needed = " or ".join(sorted(p.value for p in entity_set.permissions))
        raise ODataError(403, "Forbidden", f"the role {caller.user.role.value} needs {needed}")
    if not can_read(entity_set.site_rule, caller.scope):
        raise ODataError(
            403, "Forbidden", "this entity set holds every site's data: open to users of no site"
        )
    return entity_set


def _options(request: Request, caller: _Caller, entity_set: EntitySet) -> QueryOptions:
    options = parse_options(request.query_params.multi_items())
    token = options.skiptoken
    if token is None:
        return options
    unpacked = unpack_token(
        token,
        user_id=caller.user.id,
        entity_set=entity_set.name,
        cursors=_on_app(request, "odata_cursors", CursorStore),
    )
    if unpacked is None:
        return options
    if set(options.given) - {"$skiptoken"}:
        raise ODataError(400, "BadRequest", "this $skiptoken stands alone: follow the next link")
    return parse_options(unpacked.items())


def _open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    try:
        return open_read_only(settings)
    except WarehouseError:
        # The error names the file's path, which is no business of a BI client.
        if not warehouse_file(settings).exists():
            raise ODataError(
                503, "WarehouseMissing", "the warehouse has not been built yet"
            ) from None
        raise ODataError(
            503,
            "WarehouseBusy",
            "the warehouse is being written: try again shortly",
            headers={"Retry-After": "5"},
        ) from None


@contextmanager
def _warehouse(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    settings = get_settings(request)
    reader = _on_app(
        request, "odata_warehouse", lambda: SharedReader(lambda: _open_warehouse(settings))
    )
    with reader.cursor() as cursor:
        yield cursor


@router.get("", include_in_schema=False)
@router.get("/", summary="OData service document")
def service(request: Request, db: SessionDep) -> Response:
    """The entity sets the caller may read."""
    access = _Access(request, "$service")

    def make() -> Response:
        access.caller = _authenticate(request, db)
        body = service_document(_service_root(request), access.caller.readable())
        return JSONResponse(
            body,
            headers=ODATA_VERSION,
            media_type="application/json;odata.metadata=minimal",
        )

    return _served(access, make)


@router.get("/$metadata", summary="OData $metadata (CSDL XML)")
def metadata(request: Request, db: SessionDep) -> Response:
    """The CSDL XML of the entity sets the caller may read."""
    access = _Access(request, "$metadata")

    def make() -> Response:
        access.caller = _authenticate(request, db)
        names = tuple(s.name for s in access.caller.readable())
        return Response(
            _metadata_for(names),
            media_type="application/xml",
            headers=ODATA_VERSION,
        )

    return _served(access, make)


@router.get("/{name}/$count", summary="Rows of an entity set matching $filter")
def count(name: str, request: Request, db: SessionDep) -> Response:
    """The number of rows (text/plain), within the caller's sites."""
    access = _Access(request, name[:64])

    def make() -> Response:
        caller = access.caller = _authenticate(request, db)
        entity_set = _entity_set(caller, name)
        options = _options(request, caller, entity_set)
        with _warehouse(request) as connection:
            total = count_rows(connection, entity_set, options, caller.scope)
        return Response(str(total), media_type="text/plain", headers=ODATA_VERSION)

    return _served(access, make)


@router.get("/{name}", summary="A page of an entity set")
def rows(name: str, request: Request, db: SessionDep) -> Response:
    """Rows of an entity set as OData JSON, with @odata.nextLink while more remain."""
    access = _Access(request, name[:64])

    def make() -> Response:
        caller = access.caller = _authenticate(request, db)
        entity_set = _entity_set(caller, name)
        options = _options(request, caller, entity_set)
        response_kind = response_format(request.headers.get("accept"), options.format)
        page_size, preferred = _page_size(request)
        with _warehouse(request) as connection:
            page = read_page(
                connection,
                entity_set,
                options,
                caller.scope,
                page_size=page_size,
                response=response_kind,
                service_root=_service_root(request),
                user_id=caller.user.id,
                cursors=_on_app(request, "odata_cursors", CursorStore),
            )
        access.rows = page.rows
        headers = dict(ODATA_VERSION)
        if preferred:
            headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
        return Response(page.body, media_type=response_kind.content_type, headers=headers)

    return _served(access, make)
