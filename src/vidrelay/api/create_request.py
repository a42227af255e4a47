"""Read a create-video request in any of the shapes clients send: multipart (both official
SDKs, always), JSON, or urlencoded; with `input_reference` as a file, an object, or bracketed
multipart fields (`input_reference[image_url]`, as the Node SDK sends). Fields other than the
standard ones are the model's parameters (an SDK's `extra_body`), checked by the catalog."""

from __future__ import annotations

import json
import re
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
    character_ids: list[str] = field(default_factory=list)
    """`characters`: `[{"id": "char_…"}]` in JSON, `characters[][id]` (or `characters[0][id]`)
    in multipart, as the SDKs send a list of objects."""


async def read_create_form(request: Request) -> CreateForm:
    if await is_form(request):
        return await _from_form(request)
    return await _from_json(request)


async def is_form(request: Request) -> bool:
    """True for a multipart or urlencoded body, False for JSON; a 415 for anything else."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return True
    if content_type == "application/json" or content_type.endswith("+json"):
        return False
    raise UnsupportedMediaType(
        f"Unsupported Content-Type {content_type or '(none)'!r}; send multipart/form-data "
        "or application/json."
    )


async def parse_form(request: Request, max_files: int = 4) -> FormData:
    """The multipart or urlencoded body, bounded; a 400 when it cannot be parsed."""
    try:
        return await request.form(
            max_files=max_files, max_fields=64, max_part_size=_MAX_TEXT_PART_BYTES
        )
    except (MultiPartException, HTTPException) as error:
        detail = getattr(error, "detail", None) or getattr(error, "message", None) or str(error)
        raise InvalidRequest(f"The multipart body could not be parsed: {detail}") from error


async def parse_json_object(request: Request) -> dict[str, Any]:
    try:
        body: Any = json.loads(await request.body())
    except (ValueError, RecursionError) as error:  # JSONDecodeError, a 5,000-digit number
        raise InvalidRequest(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


_CHARACTER_FIELD = re.compile(r"characters\[[0-9]{0,3}\](?:\[id\])?")
MAX_CHARACTERS = 4


def _character_ids(values: list[object]) -> list[str]:
    """The ids a create names, each `{"id": …}` or a bare id; at most MAX_CHARACTERS."""
    ids: list[str] = []
    for value in values:
        found = value.get("id") if isinstance(value, dict) else value
        if not isinstance(found, str) or not found.startswith("char_") or len(found) > 60:
            raise InvalidRequest(
                'characters must be a list of {"id": "char_…"} objects.', param="characters"
            )
        ids.append(found)
    if len(ids) > MAX_CHARACTERS:
        raise InvalidRequest(
            f"characters names {len(ids)} characters; at most {MAX_CHARACTERS}.",
            param="characters",
        )
    return list(dict.fromkeys(ids))


async def _from_form(request: Request) -> CreateForm:
    form = await parse_form(request)
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
    characters: list[object] = []
    for name, value in form.multi_items():
        if name in TEXT_FIELDS or name in _REFERENCE_FIELDS:
            continue
        if _CHARACTER_FIELD.fullmatch(name) and isinstance(value, str):
            characters.append(value)
            continue
        if isinstance(value, UploadFile):
            raise InvalidRequest(f"{name} must be a text field, not a file.", param=name[:100])
        parsed.params[name] = value
    parsed.character_ids = _character_ids(characters)
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
    body = await parse_json_object(request)
    characters = body.get("characters")
    if characters is not None and not isinstance(characters, list):
        raise InvalidRequest(
            'characters must be a list of {"id": "char_…"} objects.', param="characters"
        )
    parsed = CreateForm(
        fields={name: body[name] for name in TEXT_FIELDS if name in body},
        params={
            name: value
            for name, value in body.items()
            if name not in TEXT_FIELDS and name not in ("input_reference", "characters")
        },
        character_ids=_character_ids(characters or []),
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
