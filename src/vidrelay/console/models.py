"""`/console/models`: the catalog and its price rules, editable, and the tenant groups'
multipliers.

A model is declared as TOML text, the same fields as a `[[models]]` table of `vidrelay.toml`:
a model has lists of routes and parameters, each a table of its own, which a form of fixed
fields can only offer as repeated blank rows (and, without JavaScript, never enough of them);
text the operator already writes in the config file, pre-filled with a model's declaration to
edit it, says every field at once and is checked by the same parser (`parse_model`), whose
refusals name the field. Price rules and multipliers are flat, so they are plain forms.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.operator import Operator, console_actor
from vidrelay.console.pages import PageRoute, checked_form, context_of, redirect, render
from vidrelay.console.sessions import Session
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.declarations import model_declaration, parse_model
from vidrelay.domain.errors import InvalidRequest, VidrelayError
from vidrelay.domain.pricing import (
    PriceDeclaration,
    SizeClass,
    multiplier_text,
    parse_conditions,
    parse_dollars,
)
from vidrelay.services import catalog as catalog_service
from vidrelay.services import tenants as tenant_service
from vidrelay.store import accounts, prices
from vidrelay.store import channels as channel_store
from vidrelay.store import models as model_store

router = APIRouter(prefix="/console/models", route_class=PageRoute, include_in_schema=False)

EXAMPLE = """name = "my-model"
owned_by = "my-provider"
sizes = ["1280x720", "720x1280"]
capabilities = ["input_reference"]
routes = [{ route_class = "official", seconds = ["5", "10"] }]
params = [{ name = "resolution", type = "enum", values = ["720p", "1080p"], default = "720p" }]
"""


def toml_text(declaration: Mapping[str, Any]) -> str:
    """A declaration as TOML, one field a line (lists of tables inline), for the text box.
    A JSON string is a TOML basic string, so strings go through `json.dumps`."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return str(item)
        if isinstance(item, str):
            return json.dumps(item, ensure_ascii=False)
        if isinstance(item, list):
            return "[" + ", ".join(value(element) for element in item) + "]"
        return "{ " + ", ".join(f"{key} = {value(inner)}" for key, inner in item.items()) + " }"

    return "".join(f"{key} = {value(item)}\n" for key, item in declaration.items())


def _text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


async def _page(
    request: Request,
    session: Session,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = context_of(request)
    async with context.db.read() as conn:
        catalog = await model_store.load_catalog(conn)
        rules = await prices.price_rules_for(conn)
        groups = await accounts.list_groups(conn)
        declared = await channel_store.list_channels(conn)
    edit = request.query_params.get("edit", "")
    editing = catalog.get(edit)
    form = {
        "declaration": toml_text(model_declaration(editing)) if editing else EXAMPLE,
        "price_model": "",
        "route_class": "",
        "size_class": "",
        "per": "second",
        "amount": "",
        "when": "",
        "group": "",
        "multiplier": "",
        **(values or {}),
    }
    return render(
        request,
        "operator/models.html",
        {
            "models": list(catalog),
            "rules": rules,
            "groups": sorted(groups.items()),
            "channels_of": {
                model.name: [c.name for c in declared if model.name in c.models]
                for model in catalog
            },
            "declarations": {model.name: model_declaration(model) for model in catalog},
            "form": form,
            "errors": errors or {},
            "route_classes": [route_class.value for route_class in RouteClass],
            "size_classes": [size.value for size in SizeClass],
            "multiplier_text": multiplier_text,
        },
        session=session,
        status_code=status_code,
    )


@router.get("")
async def models_page(request: Request, session: Operator) -> Response:
    return await _page(request, session)


async def _refused(
    request: Request, session: Session, error: VidrelayError, field: str, form: FormData
) -> Response:
    """The page again, the refusal beside the form's field, what was typed kept."""
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    return await _page(
        request,
        session,
        errors={field: error.message},
        values=values,
        status_code=error.status_code,
    )


@router.post("/declare")
async def declare_model(request: Request, session: Operator) -> Response:
    """Declare a model, or replace the one of that name (jobs accepted keep their request)."""
    form = await checked_form(request, session)
    try:
        try:
            data = tomllib.loads(_text(form, "declaration"))
        except tomllib.TOMLDecodeError as error:
            raise InvalidRequest(f"Not TOML: {error}.", param="declaration") from error
        model = parse_model(data)
        await catalog_service.declare_models(
            context_of(request).db,
            [model],
            actor=console_actor(request),
            wakeups=context_of(request).wakeups,
        )
    except VidrelayError as error:
        return await _refused(request, session, error, "declaration", form)
    return redirect(f"/console/models#model-{model.name}")


@router.post("/remove")
async def remove_model(request: Request, session: Operator) -> Response:
    """Refused (409) while a channel lists the model or a job for it is unfinished."""
    form = await checked_form(request, session)
    try:
        await catalog_service.remove_model(
            context_of(request).db,
            _text(form, "name"),
            actor=console_actor(request),
            wakeups=context_of(request).wakeups,
        )
    except VidrelayError as error:
        return await _refused(request, session, error, "remove", form)
    return redirect("/console/models")


_PRICE_FIELDS = {
    "model": "price_model",
    "route_class": "route_class",
    "size_class": "size_class",
    "amount": "amount",
    "per_second_usd": "amount",
    "per_request_usd": "amount",
}
"""A price rule's refusal by its param, as the form's field (a condition's: `when`)."""


def _declaration(form: FormData, *, priced: bool) -> PriceDeclaration:
    route, size = _text(form, "route_class"), _text(form, "size_class")
    if route and route not in RouteClass.__members__.values():
        raise InvalidRequest(f"Unknown route class {route!r}.", param="route_class")
    if size and size not in SizeClass.__members__.values():
        raise InvalidRequest(f"Unknown size class {size!r}.", param="size_class")
    amount = None
    if priced:
        amount = parse_dollars(_text(form, "amount"), "amount", signed=False)
    per_request = _text(form, "per") == "request"
    return PriceDeclaration(
        model=_text(form, "price_model"),
        route_class=RouteClass(route) if route else None,
        size_class=SizeClass(size) if size else None,
        per_second_micros=None if per_request else amount,
        per_request_micros=amount if per_request else None,
        when=parse_conditions(
            line.strip()
            for written in form.getlist("when")
            if isinstance(written, str)
            for line in written.splitlines()
            if line.strip()
        ),
    )


@router.post("/prices")
async def set_price(request: Request, session: Operator) -> Response:
    """Insert or replace the rule for (model, route class, size class, conditions)."""
    form = await checked_form(request, session)
    try:
        await catalog_service.set_price(
            context_of(request).db, _declaration(form, priced=True), actor=console_actor(request)
        )
    except VidrelayError as error:
        field = _PRICE_FIELDS.get(error.param or "", "when" if error.param else "price")
        return await _refused(request, session, error, field, form)
    return redirect("/console/models#prices")


@router.post("/prices/delete")
async def delete_price(request: Request, session: Operator) -> Response:
    form = await checked_form(request, session)
    try:
        await catalog_service.delete_price(
            context_of(request).db, _declaration(form, priced=False), actor=console_actor(request)
        )
    except VidrelayError as error:
        return await _refused(request, session, error, "price", form)
    return redirect("/console/models#prices")


@router.post("/groups")
async def set_group(request: Request, session: Operator) -> Response:
    """A tenant group's multiplier, through the admin API's use case."""
    form = await checked_form(request, session)
    try:
        await tenant_service.set_group(
            context_of(request).db,
            _text(form, "group"),
            _text(form, "multiplier"),
            actor=console_actor(request),
        )
    except VidrelayError as error:
        field = "group" if error.param == "name" else "multiplier"
        return await _refused(request, session, error, field, form)
    return redirect("/console/models#groups")
