"""Prices as data, in integer micro-dollars so no float ever touches money.

A price rule names a model and, optionally, a route class, a size class and conditions on the
request's declared parameters (`when = { resolution = "1080p" }`, or the built-in
`operation`); it prices per second of video or per request. The most specific matching rule
wins: the most conditions first, then route and size class; between rules equally specific,
the higher price, so overlapping rules never sell below what either says. A tenant group
multiplies the result (in parts per million). The price is computed from the normalised
request (every default filled in) and stored on the job at accept, so later changes never
alter it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from vidrelay.domain.catalog import (
    OPERATION_CONDITION,
    SECONDS_CONDITION,
    Catalog,
    ModelSpec,
    NormalisedRequest,
    Operation,
    RouteClass,
)
from vidrelay.domain.errors import InvalidRequest, ModelNotFound
from vidrelay.domain.params import value_text

MICROS_PER_USD = 1_000_000
PPM = 1_000_000  # a multiplier of 1.0
_MULTIPLIER = re.compile(r"[0-9]{1,4}(\.[0-9]{1,6})?")
_DOLLARS = re.compile(r"-?[0-9]{1,10}(\.[0-9]{1,6})?")
STANDARD_MAX_PIXELS = 1280 * 720


class SizeClass(StrEnum):
    STANDARD = "standard"
    HIGH = "high"


def size_class(size: str) -> SizeClass:
    """`standard` up to 1280x720 pixels (720p), `high` above (the seed's 1024x1792)."""
    width, _, height = size.partition("x")
    return SizeClass.HIGH if int(width) * int(height) > STANDARD_MAX_PIXELS else SizeClass.STANDARD


Conditions = tuple[tuple[str, str], ...]
"""(parameter, canonical value text) pairs, sorted by parameter."""


@dataclass(frozen=True)
class PriceRule:
    model: str
    route_class: RouteClass | None = None
    size_class: SizeClass | None = None
    per_second_micros: int | None = None
    per_request_micros: int | None = None
    conditions: Conditions = ()

    def __post_init__(self) -> None:
        if (self.per_second_micros is None) == (self.per_request_micros is None):
            raise ValueError("a price rule has either a per-second or a per-request price")
        amount = self.per_second_micros or self.per_request_micros or 0
        if amount < 0:
            raise ValueError("a price cannot be negative")
        object.__setattr__(self, "conditions", tuple(sorted(self.conditions)))

    def matches(self, request: NormalisedRequest) -> bool:
        return (
            self.model == request.model
            and self.route_class in (None, request.route_class)
            and self.size_class in (None, size_class(request.size))
            and all(request.condition_value(name) == value for name, value in self.conditions)
        )

    @property
    def specificity(self) -> tuple[int, int]:
        return len(self.conditions), (self.route_class is not None) + (self.size_class is not None)

    @property
    def when(self) -> dict[str, str]:
        return dict(self.conditions)

    def price(self, seconds: int) -> int:
        if self.per_request_micros is not None:
            return self.per_request_micros
        assert self.per_second_micros is not None
        return self.per_second_micros * seconds


DEFAULT_PRICE_RULES: tuple[PriceRule, ...] = (
    PriceRule("sora-2", per_second_micros=100_000),
    PriceRule("sora-2-pro", size_class=SizeClass.STANDARD, per_second_micros=300_000),
    PriceRule("sora-2-pro", size_class=SizeClass.HIGH, per_second_micros=500_000),
)


def quote(rules: Iterable[PriceRule], request: NormalisedRequest, multiplier_ppm: int = PPM) -> int:
    """The price of a request in micro-dollars: the most specific rule, times the multiplier."""
    seconds = int(request.seconds)
    matching = [(rule.specificity, rule.price(seconds)) for rule in rules if rule.matches(request)]
    if not matching:
        raise InvalidRequest(
            f"No price is set for {request.model} on the {request.route_class} route at "
            f"{request.size}; it cannot be sold here.",
            param="model",
            code="model_not_priced",
        )
    return scale(max(matching)[1], multiplier_ppm)


def character_price(
    rules: Iterable[PriceRule], model: ModelSpec, clip_seconds: float, multiplier_ppm: int = PPM
) -> int:
    """What creating a character costs: free unless a rule of `model` says
    `operation = "character"` (a rule without that condition prices videos, not characters);
    a per-second rule counts the clip's whole seconds."""
    explicit = [rule for rule in rules if rule.when.get(OPERATION_CONDITION) == "character"]
    if not explicit:
        return 0
    request = NormalisedRequest(
        model=model.name,
        route_class=model.routes[0].route_class,
        seconds=str(max(1, math.ceil(clip_seconds))),
        size=model.default_size,
        prompt="",
        operation=Operation.CHARACTER,
    )
    try:
        return quote(explicit, request, multiplier_ppm)
    except InvalidRequest:  # the rules name another route or size class: not this one
        return 0


def scale(micros: int, multiplier_ppm: int) -> int:
    """An amount times a group multiplier, rounded half up to the micro-dollar."""
    return int((Decimal(micros) * multiplier_ppm / PPM).quantize(Decimal(1), ROUND_HALF_UP))


def price_conditions(model: ModelSpec, when: Mapping[str, object]) -> Conditions:
    """Conditions from their written form, each value typed by the model's own declaration so
    that it matches what a request normalises to; a condition on anything but a declared
    parameter or `operation` is refused."""
    conditions: list[tuple[str, str]] = []
    for name, raw in when.items():
        path = f"when.{name}"
        if name == OPERATION_CONDITION:
            operations = [operation.value for operation in Operation]
            if raw not in operations:
                raise InvalidRequest(
                    f"{path}: operation is one of: {', '.join(operations)}.", param=path
                )
            conditions.append((name, str(raw)))
            continue
        if name == SECONDS_CONDITION:
            text = str(raw).strip()
            if isinstance(raw, bool) or not any(route.allows(text) for route in model.routes):
                allowed = "; ".join(route.allowed_text() for route in model.routes)
                raise InvalidRequest(
                    f"{path}: {model.name} offers seconds {allowed}, not {raw!r}.", param=path
                )
            conditions.append((name, text))
            continue
        param = model.param(name)
        if param is None:
            declared = ", ".join(p.name for p in model.params) or "none"
            raise InvalidRequest(
                f"{path}: {model.name} declares no parameter {name!r} (declared: {declared}; "
                f"or {OPERATION_CONDITION}, {SECONDS_CONDITION}).",
                param=path,
            )
        try:
            conditions.append((name, value_text(param.coerce(raw))))
        except InvalidRequest as error:
            raise InvalidRequest(f"{path}: {error.message}", param=path) from error
    return tuple(sorted(conditions))


def parse_conditions(written: Iterable[str]) -> dict[str, str]:
    """`["resolution=1080p", "generate_audio=true"]` (CLI options, query parameters) as a
    `when` table; the values are typed later, by the model's declaration."""
    conditions: dict[str, str] = {}
    for pair in written:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidRequest(
                f"when: write a condition as NAME=VALUE, e.g. resolution=1080p; got {pair[:80]!r}.",
                param="when",
            )
        conditions[name.strip()] = value.strip()
    return conditions


def check_price_rule(rule: PriceRule, catalog: Catalog) -> None:
    """A rule must name a model of the catalog, one of its routes, and only conditions that
    model can meet (what `price_conditions` makes)."""
    model = catalog.get(rule.model)
    if model is None:
        raise ModelNotFound(
            f"The model {rule.model!r} is not in the catalog; declare it first "
            "(GET /admin/models lists the catalog).",
            param="model",
        )
    if rule.route_class is not None and model.route(rule.route_class) is None:
        routes = ", ".join(route.route_class.value for route in model.routes)
        raise InvalidRequest(
            f"{model.name} has no {rule.route_class} route; its routes: {routes}.",
            param="route_class",
        )
    if price_conditions(model, rule.when) != rule.conditions:
        raise InvalidRequest(
            f"when: {dict(rule.conditions)} is not how {model.name} writes these values.",
            param="when",
        )


@dataclass(frozen=True)
class PriceDeclaration:
    """A price rule as an operator writes it (file, admin API, CLI): conditions in their
    written form, typed by the model's declaration when the rule is made."""

    model: str
    route_class: RouteClass | None = None
    size_class: SizeClass | None = None
    per_second_micros: int | None = None
    per_request_micros: int | None = None
    when: Mapping[str, object] = field(default_factory=dict)

    def rule(self, catalog: Catalog) -> PriceRule:
        """The rule, checked against the catalog; refused naming the field at fault."""
        if (self.per_second_micros is None) == (self.per_request_micros is None):
            raise InvalidRequest(
                "A price rule has exactly one of per_second_usd and per_request_usd.",
                param="per_second_usd",
            )
        for param, amount in (
            ("per_second_usd", self.per_second_micros),
            ("per_request_usd", self.per_request_micros),
        ):
            if amount is not None and amount < 0:
                raise InvalidRequest(f"{param} cannot be negative.", param=param)
        rule = PriceRule(
            self.model,
            self.route_class,
            self.size_class,
            self.per_second_micros,
            self.per_request_micros,
            self.conditions(catalog),
        )
        check_price_rule(rule, catalog)
        return rule

    def conditions(self, catalog: Catalog) -> Conditions:
        """The conditions typed by the model's declaration (as written for a model the
        catalog no longer has, so its leftover rules can still be named)."""
        model = catalog.get(self.model)
        if model is None:
            return tuple(sorted((name, str(value)) for name, value in self.when.items()))
        return price_conditions(model, self.when)


def price_micros(request: NormalisedRequest) -> int:
    """The built-in default price (DESIGN.md §3)."""
    return quote(DEFAULT_PRICE_RULES, request)


def usd_to_micros(usd: str | Decimal | int) -> int:
    amount = Decimal(str(usd)) * MICROS_PER_USD
    if amount != amount.to_integral_value():
        raise ValueError(f"{usd} USD has more precision than a micro-dollar")
    return int(amount)


def parse_dollars(text: str, param: str, *, signed: bool = True) -> int:
    """A decimal string of dollars in micro-dollars: at most 6 decimals, no exponent, no
    separators, never a float; the same rule for the admin API and the console."""
    if not _DOLLARS.fullmatch(text) or (not signed and text.startswith("-")):
        kind = "a" if signed else "a non-negative"
        raise InvalidRequest(
            f"{param} must be {kind} decimal string of dollars with at most 6 decimals, "
            'e.g. "10.5".',
            param=param,
        )
    return usd_to_micros(text)


def micros_to_usd(micros: int) -> Decimal:
    """Exact decimal dollars, always with 6 places (e.g. `Decimal('49.200000')`)."""
    return (Decimal(micros) / MICROS_PER_USD).quantize(Decimal("0.000001"))


def usd_text(micros: int) -> str:
    """Dollars for people: `0.8` → "0.80", `12.345` → "12.345"."""
    text = f"{micros_to_usd(micros):f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def dollars(micros: int) -> str:
    """Money for people: `$5.00`, `-$1.25`, `$0.126` (exact decimals stay in JSON)."""
    sign = "-" if micros < 0 else ""
    return f"{sign}${usd_text(abs(micros))}"


def multiplier_text(ppm: int) -> str:
    """A group multiplier for people: `0.8`, `1`, `1.25`."""
    return f"{Decimal(ppm) / PPM:f}".rstrip("0").rstrip(".") or "0"


def parse_multiplier(text: str, param: str = "multiplier") -> int:
    """A group's price multiplier as typed (`"0.8"`), in parts per million."""
    if not _MULTIPLIER.fullmatch(text):
        raise InvalidRequest(
            f'{param} must be a non-negative decimal string with at most 6 decimals, e.g. "0.8".',
            param=param,
        )
    return multiplier_to_ppm(text)


def multiplier_to_ppm(multiplier: str | Decimal) -> int:
    value = Decimal(str(multiplier)) * PPM
    if value < 0 or value != value.to_integral_value():
        raise ValueError(f"multiplier {multiplier} must be >= 0 with at most 6 decimals")
    return int(value)
