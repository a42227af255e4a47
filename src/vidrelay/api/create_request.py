"""Read a create-video request in any of the shapes clients send: multipart (both official
SDKs, always), JSON, or urlencoded; with `input_reference` as a file, an object, or bracketed
multipart fields (`input_reference[image_url]`, as the Node SDK sends). Fields other than the
standard ones are the model's parameters (an SDK's `extra_body`), checked by the catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from vidrelay.domain.catalog import STANDARD_FIELDS
from vidrelay.domain.errors import InvalidRequest, UnsupportedMediaType
from vidrelay.media.reference_images import MAX_REFERENCE_BYTES

TEXT_FIELDS = tuple(sorted(STANDARD_FIELDS - {"input_reference"}))
_REFERENCE_FIELDS = ("input_reference", "input_reference[image_url]", "input_reference[file_id]")
_MAX_TEXT_PART_BYTES = 256 * 1024


@dataclass
class CreateForm:
    fields: dict[str, object] = field(default_factory=dict)
    reference_upload: bytes | None = None
    reference_url: str | None = None
    reference_file_id: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    """Every other field, as sent: the catalog types or refuses each."""


async def read_create_form(request: Request) -> CreateForm:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _from_form(request)
    if content_type == "application/json" or content_type.endswith("+json"):
        return await _from_json(request)
    raise UnsupportedMediaType(
        f"Unsupported Content-Type {content_type or '(none)'!r}; send multipart/form-data "
        "or application/json."
    )


async def _from_form(request: Request) -> CreateForm:
    try:
        form: FormData = await request.form(
            max_files=4, max_fields=64, max_part_size=_MAX_TEXT_PART_BYTES
        )
    except (MultiPartException, HTTPException) as error:
        detail = getattr(error, "detail", None) or getattr(error, "message", None) or str(error)
        raise InvalidRequest(f"The multipart body could not be parsed: {detail}") from error
    parsed = CreateForm()
    for name in TEXT_FIELDS:
        value = form.get(name)
        if value is None:
            continue
        if isinstance(value, UploadFile):
            raise InvalidRequest(f"{name} must be a text field, not a file.", param=name)
        parsed.fields[name] = value
    reference = form.get("input_reference")
    if isinstance(reference, UploadFile):
        parsed.reference_upload = await _read_upload(reference)
    elif isinstance(reference, str) and reference:
        parsed.reference_url = reference
    for key, target in (("input_reference[image_url]", "url"), ("input_reference[file_id]", "id")):
        value = form.get(key)
        if isinstance(value, UploadFile):
            raise InvalidRequest(f"{key} must be a text field.", param=key)
        if value:
            if target == "url":
                parsed.reference_url = value
            else:
                parsed.reference_file_id = value
    for name, value in form.multi_items():
        if name in TEXT_FIELDS or name in _REFERENCE_FIELDS:
            continue
        if isinstance(value, UploadFile):
            raise InvalidRequest(f"{name} must be a text field, not a file.", param=name[:100])
        parsed.params[name] = value
    await form.close()
    return parsed


async def _read_upload(upload: UploadFile) -> bytes:
    data = await upload.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        size = upload.size or len(data)
        raise InvalidRequest(
            f"input_reference is {size / 1024 / 1024:.1f} MB; the limit is 20 MB.",
            param="input_reference",
        )
    return data


async def _from_json(request: Request) -> CreateForm:
    try:
        body: Any = json.loads(await request.body())
    except (ValueError, RecursionError) as error:  # JSONDecodeError, a 5,000-digit number
        raise InvalidRequest(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    parsed = CreateForm(
        fields={name: body[name] for name in TEXT_FIELDS if name in body},
        params={
            name: value
            for name, value in body.items()
            if name not in TEXT_FIELDS and name != "input_reference"
        },
    )
    for name, value in parsed.fields.items():
        if name != "seconds" and value is not None and not isinstance(value, str):
            raise InvalidRequest(f"{name} must be a string.", param=name)
    reference = body.get("input_reference")
    if isinstance(reference, dict):
        url, file_id = reference.get("image_url"), reference.get("file_id")
        if url is not None and not isinstance(url, str):
            raise InvalidRequest("image_url must be a string.", param="input_reference.image_url")
        if file_id is not None and not isinstance(file_id, str):
            raise InvalidRequest("file_id must be a string.", param="input_reference.file_id")
        parsed.reference_url = url
        parsed.reference_file_id = file_id
    elif isinstance(reference, str) and reference:
        parsed.reference_url = reference
    elif reference is not None:
        raise InvalidRequest(
            "input_reference must be an object with image_url (a URL or data: URL).",
            param="input_reference",
        )
    return parsed
