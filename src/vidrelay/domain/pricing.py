"""Prices as data, in integer micro-dollars so no float ever touches money.

A price rule names a model and, optionally, a route class and a size class; the most specific
matching rule prices a request, per second of video or per request. A tenant group multiplies
the result (in parts per million). The price is computed from the normalised request (omitted
`seconds` already filled in) and stored on the job at accept, so later changes never alter it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from vidrelay.domain.catalog import NormalisedRequest, RouteClass
from vidrelay.domain.errors import InvalidRequest

MICROS_PER_USD = 1_000_000
PPM = 1_000_000  # a multiplier of 1.0


class SizeClass(StrEnum):
    STANDARD = "standard"
    HIGH = "high"


HIGH_RESOLUTION_SIZES = frozenset({"1024x1792", "1792x1024"})


def size_class(size: str) -> SizeClass:
    return SizeClass.HIGH if size in HIGH_RESOLUTION_SIZES else SizeClass.STANDARD


@dataclass(frozen=True)
class PriceRule:
    model: str
    route_class: RouteClass | None = None
    size_class: SizeClass | None = None
    per_second_micros: int | None = None
    per_request_micros: int | None = None

    def __post_init__(self) -> None:
        if (self.per_second_micros is None) == (self.per_request_micros is None):
            raise ValueError("a price rule has either a per-second or a per-request price")
        amount = self.per_second_micros or self.per_request_micros or 0
        if amount < 0:
            raise ValueError("a price cannot be negative")

    def matches(self, request: NormalisedRequest) -> bool:
        return (
            self.model == request.model
            and self.route_class in (None, request.route_class)
            and self.size_class in (None, size_class(request.size))
        )

    @property
    def specificity(self) -> int:
        return (self.route_class is not None) + (self.size_class is not None)

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
    matching = [rule for rule in rules if rule.matches(request)]
    if not matching:
        raise InvalidRequest(
            f"No price is set for {request.model} on the {request.route_class} route at "
            f"{request.size}; it cannot be sold here.",
            param="model",
            code="model_not_priced",
        )
    base = max(matching, key=lambda rule: rule.specificity).price(int(request.seconds))
    scaled = (Decimal(base) * multiplier_ppm / PPM).quantize(Decimal(1), ROUND_HALF_UP)
    return int(scaled)


def price_micros(request: NormalisedRequest) -> int:
    """The built-in default price (DESIGN.md §3)."""
    return quote(DEFAULT_PRICE_RULES, request)


def usd_to_micros(usd: str | Decimal | int) -> int:
    amount = Decimal(str(usd)) * MICROS_PER_USD
    if amount != amount.to_integral_value():
        raise ValueError(f"{usd} USD has more precision than a micro-dollar")
    return int(amount)


def micros_to_usd(micros: int) -> Decimal:
    """Exact decimal dollars, always with 6 places (e.g. `Decimal('49.200000')`)."""
    return (Decimal(micros) / MICROS_PER_USD).quantize(Decimal("0.000001"))


def usd_text(micros: int) -> str:
    """Dollars for people: `0.8` → "0.80", `12.345` → "12.345"."""
    text = f"{micros_to_usd(micros):f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def multiplier_to_ppm(multiplier: str | Decimal) -> int:
    value = Decimal(str(multiplier)) * PPM
    if value < 0 or value != value.to_integral_value():
        raise ValueError(f"multiplier {multiplier} must be >= 0 with at most 6 decimals")
    return int(value)
