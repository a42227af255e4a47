"""Default prices (DESIGN.md §3), in integer micro-dollars so no float ever touches money."""

from __future__ import annotations

from decimal import Decimal

from vidrelay.domain.catalog import NormalisedRequest

MICROS_PER_USD = 1_000_000
HIGH_RESOLUTION_SIZES = frozenset({"1024x1792", "1792x1024"})

_PER_SECOND_MICROS = {"sora-2": 100_000, "sora-2-pro": 300_000}
_PRO_HIGH_RESOLUTION_PER_SECOND_MICROS = 500_000


def price_micros(request: NormalisedRequest) -> int:
    """What an accepted job costs, fixed at accept from its normalised request."""
    per_second = _PER_SECOND_MICROS.get(request.model, _PER_SECOND_MICROS["sora-2"])
    if request.model == "sora-2-pro" and request.size in HIGH_RESOLUTION_SIZES:
        per_second = _PRO_HIGH_RESOLUTION_PER_SECOND_MICROS
    return per_second * int(request.seconds)


def usd_to_micros(usd: str | Decimal | int) -> int:
    amount = Decimal(str(usd)) * MICROS_PER_USD
    if amount != amount.to_integral_value():
        raise ValueError(f"{usd} USD has more precision than a micro-dollar")
    return int(amount)


def micros_to_usd(micros: int) -> Decimal:
    return (Decimal(micros) / MICROS_PER_USD).quantize(Decimal("0.000001")).normalize()
