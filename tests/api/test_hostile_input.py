"""Hostile input is a 4xx in OpenAI's error shape, never a 500 and never a traceback in the log,
on SQLite and PostgreSQL alike: NUL and lone surrogates anywhere a string arrives, JSON nested
100,000 deep, 5,000-digit numbers, odd content types (issue 11). One explicit test per kind,
then a property test that throws all of it at every route the app serves (`app.routes`, so a
route added later is covered without touching this file)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import ADMIN, ADMIN_TOKEN, KeyMaker, make_settings
from vidrelay.domain.signed_urls import UrlSigner
from vidrelay.settings import Settings

NUL = "a\x00b"
SURROGATE_JSON = b'"a\\ud800b"'  # a lone surrogate, as JSON escapes it
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
LONG_NUMBER = b"9" * 5_000


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, engine=False)


@pytest.fixture
async def key(make_key: KeyMaker) -> str:
    return await make_key("alice", "50")


@pytest.fixture
def log(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Fails the test when the app logged a traceback or an unhandled error."""
    yield None
    assert_quiet_log(capsys)


def assert_quiet_log(capsys: pytest.CaptureFixture[str]) -> None:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unhandled_error" not in err, err


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_openai_error(response: httpx.Response, status: int, param: str | None) -> str:
    """The error's message, after checking its status, shape and param."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["param"] == param, error
    return str(error["message"])


def multipart(fields: dict[str, str], boundary: str = "b0und") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(
            "utf-8", "surrogatepass"
        )
        + value.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for name, value in fields.items()
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --- the list, one by one -----------------------------------------------------------


async def test_a_lone_surrogate_in_a_json_string_is_a_400_naming_the_field(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    json_type = {"content-type": "application/json"}
    response = await client.post(
        "/v1/videos",
        content=b'{"prompt": ' + SURROGATE_JSON + b"}",
        headers=bearer(key) | json_type,
    )
    assert "surrogate" in assert_openai_error(response, 400, "prompt")
    response = await client.post(
        "/admin/tenants/alice/adjustments",
        content=b'{"amount_usd": "1", "note": ' + SURROGATE_JSON + b"}",
        headers=ADMIN | json_type,
    )
    assert_openai_error(response, 400, "note")


@pytest.mark.parametrize(
    ("path", "admin"), [("/v1/videos", False), ("/admin/tenants", True), ("/v1/webhooks", False)]
)
async def test_json_nested_100000_deep_is_a_400(
    client: httpx.AsyncClient, key: str, log: None, path: str, admin: bool
) -> None:
    """The hand-parsed create body and FastAPI's JSON bodies alike."""
    headers = (ADMIN if admin else bearer(key)) | {"content-type": "application/json"}
    response = await client.post(path, content=DEEP_JSON, headers=headers)
    assert "nested" in assert_openai_error(response, 400, None)


@pytest.mark.parametrize(
    ("path", "admin", "body", "param"),
    [
        ("/v1/videos", False, b'{"prompt": "p", "seconds": %s}', "seconds"),
        ("/v1/videos", False, b'{"prompt": "p", "seed": -%s.5}', "seed"),
        ("/admin/tenants", True, b'{"name": "n", "rpm": %s}', "rpm"),
        ("/admin/prices", True, b'{"model": "sora-2", "when": {"seed": %s}}', "when.seed"),
    ],
)
async def test_a_5000_digit_number_is_a_400_naming_the_field(
    client: httpx.AsyncClient,
    key: str,
    log: None,
    path: str,
    admin: bool,
    body: bytes,
    param: str,
) -> None:
    headers = (ADMIN if admin else bearer(key)) | {"content-type": "application/json"}
    method = "PUT" if path == "/admin/prices" else "POST"
    response = await client.request(method, path, content=body % LONG_NUMBER, headers=headers)
    assert "characters" in assert_openai_error(response, 400, param)


async def test_nan_and_infinity_in_json_are_a_400_naming_the_field(
    client: httpx.AsyncClient, log: None
) -> None:
    """Python's json reads them; neither PostgreSQL nor our own JSON responses can hold them.
    Refused as they are parsed, so the message names them as sent."""
    for number in (b"NaN", b"-Infinity", b"1e999"):
        response = await client.put(
            "/admin/prices",
            content=b'{"model": "sora-2", "per_second_usd": "1", "when": {"seed": %s}}' % number,
            headers=ADMIN | {"content-type": "application/json"},
        )
        assert number.decode() in assert_openai_error(response, 400, "when.seed")


async def test_a_non_ascii_signature_on_a_content_link_is_a_404_like_any_bad_signature(
    client: httpx.AsyncClient, log: None
) -> None:
    for signature in ("%C3%A9" * 32, "%E2%80%8B" + "a" * 63, "not-hex!", "ab" * 5_000):
        response = await client.get(
            f"/v1/videos/video_x/content?expires=99999999999&signature={signature}"
        )
        assert_openai_error(response, 404, None)


def test_a_non_ascii_signature_does_not_verify() -> None:
    signer = UrlSigner("secret")
    good = signer.signature("video_x", "video", 99_999_999_999)
    assert signer.verify("video_x", "video", 99_999_999_999, good)
    assert not signer.verify("video_x", "video", 99_999_999_999, "é" * len(good))


async def test_nul_in_the_prompt_is_a_400_in_every_body_encoding(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    multipart_body, multipart_type = multipart({"prompt": NUL})
    for content, content_type in (
        (json.dumps({"prompt": NUL}).encode(), "application/json"),
        (b"prompt=a%00b", "application/x-www-form-urlencoded"),
        (b"prompt=a\x00b", "application/x-www-form-urlencoded"),
        (multipart_body, multipart_type),
    ):
        response = await client.post(
            "/v1/videos", content=content, headers=bearer(key) | {"content-type": content_type}
        )
        assert "NUL" in assert_openai_error(response, 400, "prompt"), content_type
    assert (await client.get("/v1/videos", headers=bearer(key))).json()["data"] == []


async def test_nul_in_a_model_parameter_name_or_value_is_a_400(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    multipart_body, multipart_type = multipart({"prompt": "p", "seed\x00": "1"})
    response = await client.post(
        "/v1/videos", content=multipart_body, headers=bearer(key) | {"content-type": multipart_type}
    )
    assert_openai_error(response, 400, "seed\\u0000")
    response = await client.post(
        "/v1/videos", json={"prompt": "p", "tags": [{"x": NUL}]}, headers=bearer(key)
    )
    assert_openai_error(response, 400, "tags.0.x")


async def test_a_multipart_charset_that_could_smuggle_nul_is_a_415(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    """Starlette decodes text fields in the charset the request names: `unicode_escape` would
    turn the six bytes `\\u0000` into a NUL that no byte check sees."""
    body, content_type = multipart({"prompt": "a\\u0000b"})
    response = await client.post(
        "/v1/videos",
        content=body,
        headers=bearer(key) | {"content-type": content_type + "; charset=unicode_escape"},
    )
    assert_openai_error(response, 415, None)


async def test_nul_in_after_and_other_query_parameters_is_a_400_naming_it(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    response = await client.get("/v1/videos?after=a%00b", headers=bearer(key))
    assert_openai_error(response, 400, "after")
    response = await client.get("/admin/ledger?tenant=a%00b", headers=ADMIN)
    assert_openai_error(response, 400, "tenant")


def _routes_with_path_parameters(app: FastAPI) -> list[tuple[str, str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        for name in re.findall(r"{(\w+)", route.path or ""):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                found.append((method, str(route.path), name))
    return found


async def test_nul_in_an_id_is_a_400_naming_it_on_every_route_with_a_path_parameter(
    app: FastAPI, client: httpx.AsyncClient, key: str, log: None
) -> None:
    routes = _routes_with_path_parameters(app)
    assert {"video_id", "name", "job_id", "delivery_id", "webhook_id"} <= {r[2] for r in routes}
    for method, template, name in routes:
        path = re.sub(  # the NUL in this parameter only, a plain value in any other
            r"{(\w+)(:\w+)?}",
            lambda found, name=name: quote(NUL, safe="") if found.group(1) == name else "x",
            template,
        )
        for headers in (bearer(key), ADMIN):
            response = await client.request(method, path, headers=headers)
            assert_openai_error(response, 400, name)


async def test_an_unknown_id_stays_a_404(client: httpx.AsyncClient, key: str, log: None) -> None:
    response = await client.get("/v1/videos/video_nope", headers=bearer(key))
    assert_openai_error(response, 404, "video_id")
    response = await client.get("/admin/jobs/video_nope", headers=ADMIN)
    assert_openai_error(response, 404, "job_id")


async def test_nul_in_admin_fields_and_notes_is_a_400_naming_the_field(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    for method, path, body, param in (
        ("POST", "/admin/tenants/alice/adjustments", {"amount_usd": "1", "note": NUL}, "note"),
        ("POST", "/admin/tenants/alice/topups", {"amount_usd": "1", "note": NUL}, "note"),
        ("PATCH", "/admin/tenants/alice", {"group": NUL}, "group"),
        ("PUT", "/admin/groups/vip", {"multiplier": NUL}, "multiplier"),
        ("POST", "/admin/channels", {"name": "c", "protocol": "openai", "keys": [NUL]}, "keys.0"),
        ("PUT", "/admin/models/m", {"routes": [{"route_class": NUL}]}, "routes.0.route_class"),
    ):
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert_openai_error(response, 400, param)


async def test_nul_in_a_header_the_app_reads_is_a_400_naming_it(
    client: httpx.AsyncClient, key: str, log: None
) -> None:
    response = await client.post(
        "/v1/videos",
        json={"prompt": "p"},
        headers=bearer(key) | {"Idempotency-Key": NUL},
    )
    assert_openai_error(response, 400, "idempotency-key")


@pytest.mark.parametrize("file_id", [5, {"id": "file_1"}, ["file_1"], True])
async def test_a_non_string_input_reference_file_id_is_a_400_naming_it(
    client: httpx.AsyncClient, key: str, log: None, file_id: object
) -> None:
    response = await client.post(
        "/v1/videos",
        json={"prompt": "p", "input_reference": {"file_id": file_id}},
        headers=bearer(key),
    )
    assert_openai_error(response, 400, "input_reference.file_id")


async def test_a_refused_body_is_never_read_before_the_key_is_checked(
    client: httpx.AsyncClient, log: None
) -> None:
    """The body is checked as the app reads it: a wrong key is still the 401."""
    response = await client.post(
        "/v1/videos",
        content=DEEP_JSON,
        headers=bearer("sk-wrong") | {"content-type": "application/json"},
    )
    assert_openai_error(response, 401, None)


# --- every route, anything at all ----------------------------------------------------------

SPECIAL_TEXT = ["\x00", "\ud800", "\udfff", "\ufffd", "é", "😀", " ", "/", "%", "..", "null", "-1"]
ODD_NUMBERS = ["NaN", "-Infinity", "1e999", "-0", "1.5e-400", "-" + "9" * 101]
FIELD_NAMES = [
    # create (standard fields and model parameters), webhooks, the admin bodies
    *("prompt", "model", "seconds", "size", "input_reference", "character_url", "seed"),
    *("character_timestamps", "callback_url", "resolution", "generate_audio", "url"),
    *("event_types", "name", "balance_usd", "group", "rpm", "max_in_flight", "amount_usd"),
    *("note", "per_second_usd", "per_request_usd", "when", "multiplier", "protocol", "keys"),
    *("models", "model_map", "priority", "weight", "max_concurrency", "route_class", "routes"),
    *("size_class", "sizes", "params", "capabilities", "enabled", "image_url", "file_id"),
]
QUERY_NAMES = [
    *("limit", "order", "after", "variant", "expires", "signature", "status_style", "tenant"),
    *("kind", "job_id", "since", "until", "before_id", "status", "event_id", "model", "when"),
    *("route_class", "size_class", "start_time", "end_time", "group_by"),
]

hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=[]), max_size=12),  # surrogates included
    st.sampled_from(SPECIAL_TEXT),
    st.lists(st.sampled_from([*SPECIAL_TEXT, "a", "0", "sora-2", "4"]), max_size=4).map("".join),
    st.tuples(st.sampled_from(["a", "sora-2", "4", ""]), st.sampled_from(["\x00", "\ud800"])).map(
        "".join
    ),
)
number_text = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(ODD_NUMBERS),
    st.just(5_000).map(lambda digits: "9" * digits),
)
field_name = st.one_of(st.sampled_from(FIELD_NAMES), hostile_text)


def _object(members: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in members.items()) + "}"


json_scalar = st.one_of(
    st.sampled_from(["null", "true", "false", "[]", "{}"]),
    number_text.filter(lambda text: text not in ("nan", "inf", "-inf")),
    hostile_text.map(json.dumps),  # ensure_ascii: a surrogate travels as its \\u escape
    st.sampled_from(["4", "8", '"4"', '"sora-2"', '"720x1280"', '"1.5"', '"-1"']),
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(field_name, children, max_size=4).map(_object),
    ),
    max_leaves=10,
)
json_members = st.dictionaries(field_name, json_value, max_size=6)
json_body = st.one_of(
    json_members.map(_object).map(str.encode),
    st.builds(
        lambda prompt, members: _object({"prompt": prompt, **members}).encode(),
        st.one_of(st.just('"a kite"'), hostile_text.map(json.dumps)),
        json_members,
    ),
    json_value.map(str.encode),
    st.sampled_from([100_000, 65]).map(lambda depth: b"[" * depth + b"]" * depth),
    st.sampled_from([b"", b"{", b'{"prompt": "\xed\xa0\x80"}']),
    st.binary(max_size=40),
)
query_parameters = st.dictionaries(
    st.one_of(st.sampled_from(QUERY_NAMES), hostile_text),
    st.one_of(hostile_text, number_text),
    max_size=4,
)
form_fields = st.dictionaries(field_name, st.one_of(hostile_text, number_text), max_size=5)


def _urlencoded(fields: dict[str, str]) -> bytes:
    pairs = (f"{_quoted(name)}={_quoted(value)}" for name, value in fields.items())
    return "&".join(pairs).encode()


def _quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


json_bodies = st.tuples(
    json_body,
    st.sampled_from(["application/json", "application/json; charset=utf-8", "a/b+json"]),
)
bodies = st.one_of(
    json_bodies,
    json_bodies,  # twice as likely: most routes that read a body read JSON
    st.tuples(form_fields.map(_urlencoded), st.just("application/x-www-form-urlencoded")),
    st.builds(multipart, form_fields),
    st.tuples(
        st.binary(max_size=40),
        st.sampled_from(
            [
                "text/plain",
                "application/octet-stream",
                "",
                "multipart/form-data",
                "multipart/form-data; boundary=b0und; charset=utf-16",
                "application/json; charset=utf-32",
            ]
        ),
    ),
    st.just((b"", None)),
)


@hypothesis_settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app for every example, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_no_route_answers_a_5xx_or_logs_a_traceback_whatever_it_is_sent(
    app: FastAPI,
    client: httpx.AsyncClient,
    key: str,
    capsys: pytest.CaptureFixture[str],
    data: st.DataObject,
) -> None:
    capsys.readouterr()  # what an earlier, failing example left
    routes = [
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]
    method, template = data.draw(st.sampled_from(routes), label="route")
    path_value = st.one_of(hostile_text, st.sampled_from(["alice", "sora-2", "video_x", "1"]))
    path = re.sub(
        r"{(\w+)(:\w+)?}", lambda _found: _quoted(data.draw(path_value, label="id")), template
    )
    query = data.draw(
        st.dictionaries(
            st.one_of(st.sampled_from(QUERY_NAMES), hostile_text),
            st.one_of(hostile_text, number_text),
            max_size=4,
        ),
        label="query",
    )
    writes = method in ("POST", "PUT", "PATCH")
    content, content_type = data.draw(
        st.one_of(json_bodies, bodies) if writes else bodies, label="body"
    )
    natural_token = ADMIN_TOKEN if template.startswith("/admin") else key
    token = data.draw(
        st.one_of(st.just(natural_token), st.sampled_from([None, key, ADMIN_TOKEN, "sk-wrong"])),
        label="token",
    )
    headers: dict[str, str | bytes] = {} if token is None else bearer(token)
    if content_type is not None:
        headers["content-type"] = content_type
    if data.draw(st.booleans(), label="extra headers"):
        headers["idempotency-key"] = data.draw(hostile_text).encode("utf-8", "surrogatepass")
        headers["x-stainless-lang"] = "python"
    url = path + ("?" + _urlencoded(query).decode() if query else "")
    response = await client.request(method, url, content=content, headers=headers)
    assert response.status_code < 500, (method, url, response.text)
    web_page = template.startswith(("/console", "/portal"))
    if web_page and "json" not in response.headers.get("content-type", ""):
        # the web apps answer people with pages and redirects; the guards' refusals stay JSON
        assert response.status_code < 400 or "text/html" in response.headers["content-type"]
    elif response.status_code >= 400:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert_quiet_log(capsys)
