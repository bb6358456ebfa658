"""Reading posted forms in portal routes: the form itself, its text fields and uploaded files."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData, UploadFile

from maintainpro.web.portal.forms import FormProblems, Getter


async def posted_form(request: Request) -> FormData:
    """The posted form, read once (Starlette keeps it for the CSRF check too)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(posted_form)]


def text_fields(form: FormData) -> Getter:
    """A getter for a form's text fields; files and missing fields read as ""."""

    def get(key: str) -> str:
        value = form.get(key)
        return value if isinstance(value, str) else ""

    return get


def texts(form: FormData, key: str) -> list[str]:
    """Every text value of a repeated field, in order."""
    return [value for value in form.getlist(key) if isinstance(value, str)]


def form_values(form: FormData) -> dict[str, str]:
    """The form's text fields, to fill a form in again after a refusal."""
    return {key: value for key, value in form.items() if isinstance(value, str)}


def uploaded_name(form: FormData, field: str) -> str:
    """The client's name of an uploaded file ("" without one); only ever used after cleaning."""
    value = form.get(field)
    return value.filename or "" if isinstance(value, UploadFile) else ""


def uploaded(form: FormData, field: str, limit: int) -> tuple[bytes, str] | None:
    """An uploaded file's bytes and declared type, None without one; FormProblems if too big."""
    value = form.get(field)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = value.file.read(limit + 1)
    if len(data) > limit:
        raise FormProblems([f"the file may be at most {limit // 1024} KiB"])
    return data, value.content_type or ""
