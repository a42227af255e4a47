"""The portal's playground: a create-video form built from the catalog, priced before it is
sent, and sent through the use case `POST /v1/videos` calls (`services/videos.accept_video`).

Choosing a model is a GET that draws the form for that model: its open seconds, its sizes,
its declared parameters and, where it takes one, a reference image; only the models the
signed-in key may order and some channel serves are offered. "Price" checks the form and
shows what it would cost; "Generate" creates the job with the same checks, price and charge as
the API (rate limit, catalog, key's models, served route, reference image, accept-and-charge)
and goes to the job's page. A refusal is shown beside the field it names, the form kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.api.context import AppContext
from vidrelay.api.create_request import CreateForm, parse_form, read_create_form
from vidrelay.api.videos import accepted_job
from vidrelay.console.pages import (
    PageRoute,
    SignInRequired,
    checked_form,
    context_of,
    field_errors,
    redirect,
    render,
)
from vidrelay.console.portal import Tenant
from vidrelay.console.sessions import CSRF_FIELD, Session
from vidrelay.domain.catalog import Capability, ModelSpec, NormalisedRequest
from vidrelay.domain.channels import served_routes
from vidrelay.domain.errors import VidrelayError
from vidrelay.services import videos as video_service
from vidrelay.services.videos import VideoOrder
from vidrelay.store import accounts
from vidrelay.store.accounts import Principal

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)

_ACTION_FIELD = "action"
_FORM_FIELDS = ("model", "seconds", "size", "prompt", "input_reference")


@dataclass(frozen=True)
class ModelForm:
    """What the form offers for one model."""

    model: ModelSpec
    seconds: list[str]
    default_seconds: str
    takes_reference: bool


@dataclass
class Filled:
    """The form as sent, to draw it again with its values kept."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    price_micros: int | None = None
    priced: NormalisedRequest | None = None


async def _principal(request: Request, session: Session) -> Principal:
    async with context_of(request).db.read() as conn:
        principal = await accounts.principal_of_key(conn, session.subject)
    if principal is None:
        raise SignInRequired("portal")
    return principal


async def _offered(context: AppContext, principal: Principal) -> dict[str, ModelForm]:
    """The models this key may order that an enabled channel serves, in catalog order."""
    declared = await context.channels.declared()
    offered = {}
    for model in await context.models.catalog():
        if principal.key_models is not None and model.name not in principal.key_models:
            continue
        routes = served_routes(declared, model)
        if not routes:
            continue
        seconds = list(dict.fromkeys(s for route in routes for s in route.seconds))
        default = model.routes[0].default_seconds if model.routes[0] in routes else seconds[0]
        offered[model.name] = ModelForm(
            model, seconds, default, model.can(Capability.INPUT_REFERENCE)
        )
    return offered


def _page(
    request: Request,
    session: Session,
    offered: dict[str, ModelForm],
    chosen: str | None,
    filled: Filled,
    status_code: int = 200,
) -> Response:
    form = offered.get(chosen or "") or next(iter(offered.values()), None)
    shown = {*_FORM_FIELDS, *(spec.name for spec in form.model.params)} if form else set()
    general = [message for name, message in filled.errors.items() if name not in shown]
    return render(
        request,
        "portal/playground.html",
        {
            "offered": offered,
            "form": form,
            "values": filled.values,
            "errors": filled.errors,
            "general_errors": general,
            "price_micros": filled.price_micros,
            "priced": filled.priced,
        },
        session=session,
        status_code=status_code,
    )


@router.get("/playground")
async def playground(request: Request, session: Tenant, model: str | None = None) -> Response:
    context = context_of(request)
    offered = await _offered(context, await _principal(request, session))
    filled = Filled()
    if model is not None and model not in offered:
        filled.errors["model"] = f"The model {model!r} is not offered to this key here."
    return _page(request, session, offered, model, filled, 400 if filled.errors else 200)


@router.post("/playground")
async def generate(request: Request, session: Tenant) -> Response:
    """With `action=price` (the "Price" button) the form is drawn again with its price;
    otherwise the job is created and the browser sent to its page."""
    await parse_form(request)  # bounded as the API bounds it; `checked_form` reads it again
    await checked_form(request, session)
    context = context_of(request)
    principal = await _principal(request, session)
    form = await read_create_form(request)
    pricing_only = form.params.pop(_ACTION_FIELD, None) == "price"
    form.params.pop(CSRF_FIELD, None)
    if form.reference_upload == b"":  # the file field left empty
        form.reference_upload = None
    filled = Filled(
        values={
            name: value
            for name, value in {**form.fields, **form.params}.items()
            if isinstance(value, str)
        }
    )
    offered = await _offered(context, principal)
    chosen = filled.values.get("model")
    try:
        if pricing_only:
            filled.priced, filled.price_micros = await video_service.price_video(
                context.video_desk, principal, _order(form)
            )
            return _page(request, session, offered, chosen, filled)
        video_id = await _create(context, principal, form)
    except VidrelayError as error:
        filled.errors = field_errors(error)
        status = error.status_code if 400 <= error.status_code < 500 else 400
        return _page(request, session, offered, chosen, filled, status)
    return redirect(f"/portal/jobs/{video_id}")


def _order(form: CreateForm) -> VideoOrder:
    """The playground's form as the create use case takes it: no callback, character or
    image URL."""
    return VideoOrder(fields=form.fields, params=form.params, reference_image=form.reference_upload)


async def _create(context: AppContext, principal: Principal, form: CreateForm) -> str:
    """`POST /v1/videos`'s use case, with the key's rate limit, for a form that names no
    callback, character or image URL."""
    rate_headers = await context.rate_limiter.hit(principal)
    accepted = await video_service.accept_video(context.video_desk, principal, _order(form))
    accepted_job(context, accepted, rate_headers)  # counted like the API's
    return accepted.job.id
