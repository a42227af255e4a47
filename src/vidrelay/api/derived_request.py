"""Read a remix, extension, edit or character request in the shapes clients send. The source
video arrives as `{"video": {"id": …}}` in JSON, as the bracketed multipart field `video[id]`
(the Node SDK; the Python SDK's `extra_body`), or as an uploaded MP4 file part `video`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request

from vidrelay.api.create_request import is_form, parse_form, parse_json_object
from vidrelay.domain.errors import InvalidRequest

_TEXT_FIELDS = ("prompt", "seconds", "model", "callback_url")


@dataclass
class DerivedForm:
    fields: dict[str, object]
    video_id: str | None = None
    video_upload: bytes | None = None


async def read_derived_form(request: Request, *, takes_video: bool) -> DerivedForm:
    """`prompt` and, for an extension, `seconds`; with `takes_video`, the source as an id or
    an upload (`model` chooses the model of an upload). Any other field is refused."""
    allowed = (*_TEXT_FIELDS, "video", "video[id]") if takes_video else ("prompt", "callback_url")
    if not await is_form(request):
        body = await parse_json_object(request)
        _refuse_unknown(body, allowed)
        parsed = DerivedForm({name: body[name] for name in _TEXT_FIELDS if name in body})
        for name, value in parsed.fields.items():
            if name != "seconds" and value is not None and not isinstance(value, str):
                raise InvalidRequest(f"{name} must be a string.", param=name)
        video = body.get("video[id]", body.get("video"))
        if isinstance(video, dict):
            video = video.get("id")
        if video is not None and not isinstance(video, str):
            raise InvalidRequest('video must be {"id": "video_…"}.', param="video")
        parsed.video_id = video or None
        return parsed
    form = await parse_form(request, max_files=1)
    try:
        _refuse_unknown(dict(form), allowed)
        parsed = DerivedForm({})
        for name in _TEXT_FIELDS:
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise InvalidRequest(f"{name} must be a text field, not a file.", param=name)
            if value is not None:
                parsed.fields[name] = value
        video, video_id = form.get("video"), form.get("video[id]")
        if isinstance(video_id, UploadFile):
            raise InvalidRequest("video[id] must be a text field.", param="video[id]")
        if isinstance(video, UploadFile):
            parsed.video_upload = await video.read()
        else:
            parsed.video_id = video_id or video or None
        return parsed
    finally:
        await form.close()


async def read_character_form(request: Request) -> tuple[object, bytes]:
    """`name` and the clip (`video`, an uploaded file): multipart only, as the official
    description has it."""
    if not await is_form(request):
        raise InvalidRequest(
            "Send a character as multipart/form-data with the clip as the file part video.",
            param="video",
        )
    form = await parse_form(request, max_files=1)
    try:
        _refuse_unknown(dict(form), ("name", "video"))
        name, video = form.get("name"), form.get("video")
        if isinstance(name, UploadFile):
            raise InvalidRequest("name must be a text field, not a file.", param="name")
        if not isinstance(video, UploadFile):
            raise InvalidRequest(
                "video is required: the character's clip, an MP4 file.",
                param="video",
                code="missing_required_parameter",
            )
        return name, await video.read()
    finally:
        await form.close()


def _refuse_unknown(fields: dict[str, object], allowed: tuple[str, ...]) -> None:
    for name in fields:
        if name not in allowed:
            raise InvalidRequest(
                f"Unknown parameter: {name[:60]!r}. This endpoint takes: {', '.join(allowed)}.",
                param=name[:100],
                code="unknown_parameter",
            )
