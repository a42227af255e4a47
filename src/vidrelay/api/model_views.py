"""The catalog on the wire: a model as `/v1/models` shows it to a tenant, and price rules as
the admin API and `/v1/models` show them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vidrelay.domain.catalog import ModelSpec, Route
from vidrelay.domain.declarations import param_declaration
from vidrelay.domain.pricing import PPM, PriceRule, micros_to_usd, scale


def model_object(
    model: ModelSpec,
    routes: list[Route],
    rules: Iterable[PriceRule],
    multiplier_ppm: int = PPM,
) -> dict[str, Any]:
    """OpenAI's model object plus `video`: what a client needs to build a request form for
    the model (its routes open now, sizes, defaults, capabilities, parameters) and what each
    request costs this caller (their group's multiplier applied)."""
    served = {route.route_class for route in routes}
    return {
        "id": model.name,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
        "video": {
            "description": model.description or None,
            "routes": [_route_view(route) for route in routes],
            "sizes": list(model.sizes),
            "defaults": {
                "size": model.default_size,
                # What a request without `seconds` gets; None while that route is closed.
                "seconds": model.routes[0].default_seconds if model.routes[0] in routes else None,
            },
            "capabilities": sorted(capability.value for capability in model.capabilities),
            # The one `seconds` an extension takes, where the provider adds a set length.
            "extension_seconds": model.extension_seconds,
            "params": [param_declaration(param) for param in model.params],
            "prices": [
                price_rule_view(rule, multiplier_ppm)
                for rule in rules
                if rule.model == model.name and rule.route_class in (None, *served)
            ],
        },
    }


def _route_view(route: Route) -> dict[str, Any]:
    view: dict[str, Any] = {
        "route_class": route.route_class.value,
        "seconds": list(route.seconds),
        "default_seconds": route.default_seconds,
    }
    if route.seconds_range is not None:
        view["seconds_range"] = list(route.seconds_range)
    return view


def price_rule_view(rule: PriceRule, multiplier_ppm: int = PPM) -> dict[str, Any]:
    def usd(micros: int | None) -> str | None:
        return None if micros is None else str(micros_to_usd(scale(micros, multiplier_ppm)))

    return {
        "model": rule.model,
        "route_class": rule.route_class.value if rule.route_class else None,
        "size_class": rule.size_class.value if rule.size_class else None,
        "when": rule.when,
        "per_second_usd": usd(rule.per_second_micros),
        "per_request_usd": usd(rule.per_request_micros),
    }
