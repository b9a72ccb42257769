"""Reply drafting of the offline model: a customer-care answer from sentiment and history.

The rules a support team would write down:

- **positive** — thank the customer and suggest the next best product: a candidate named in the
  prompt, else a product of the sample catalog in the category they buy most, not bought yet,
  priced closest to what they usually spend there;
- **neutral** — thank them, ask what would make it great, and suggest the next product too;
- **mixed** — thank them for the honest review, apologise for what fell short, free shipping;
- **negative** — apologise; a loyal customer (gold or silver tier, or five purchases and more)
  or one who complained before gets 20 % off the next order, anyone else free shipping; both
  are offered a replacement or a refund.

Offer codes derive from the customer (``SORRY20-1A2B3C``), so the same request drafts the
same reply. Pure Python; no model, no network.

>>> draft_reply(ReplyRequest(customer="Ana", review="The lid broke after a week."))[:38]
"Hi Ana, we're sorry your order let you"
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .prompts import parse_fields, parse_label
from .sentiment import Label, classify

__all__ = ["ReplyRequest", "draft_reply", "next_best_product", "parse_reply_request"]

_LOYAL_TIERS = frozenset({"gold", "silver", "platinum"})
_LOYAL_PURCHASES = 5
_ID = re.compile(r"\bp\d{4}\b", re.IGNORECASE)
_QUANTITY = re.compile(r"\s*(?:\(\s*)?(?:x\s*\d+|\d+\s*x)(?:\s*\))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyRequest:
    """What a reply is drafted from (the fields of :func:`~.prompts.reply_prompt`)."""

    customer: str
    review: str
    sentiment: Label | None = None
    product: str | None = None
    purchases: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    tier: str | None = None
    candidates: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Product:
    product_id: str
    name: str
    category: str
    price: Decimal


@functools.cache
def _catalog() -> tuple[_Product, ...]:
    from ...sample import product_items

    return tuple(
        _Product(p["product_id"]["S"], p["name"]["S"], p["category"]["S"], Decimal(p["price"]["N"]))
        for p in product_items()
    )


@functools.cache
def _by_key() -> dict[str, _Product]:
    out: dict[str, _Product] = {}
    for product in _catalog():
        out[product.name.lower()] = product
        out[product.product_id.lower()] = product
    return out


def _split(value: str | None, separators: str) -> tuple[str, ...]:
    if not value:
        return ()
    parts = re.split(separators, value)
    return tuple(p.strip(" -*\t") for p in parts if p.strip(" -*\t"))


def parse_reply_request(prompt: str) -> ReplyRequest:
    """Read a :class:`ReplyRequest` from a prompt's labelled fields (any order, any missing)."""
    fields = parse_fields(prompt)
    return ReplyRequest(
        customer=fields.get("customer", "").strip() or "there",
        review=fields.get("review", ""),
        sentiment=parse_label(fields.get("sentiment")),
        product=fields.get("product") or None,
        purchases=_split(fields.get("purchases"), r"[;\n]|,(?!\d)"),
        history=_split(fields.get("history"), r"\s\|\s|\n"),
        tier=(fields.get("tier") or "").strip().lower() or None,
        candidates=_split(fields.get("candidates"), r"[;\n]"),
    )


def _find(name: str) -> _Product | None:
    key = _QUANTITY.sub("", name).strip().lower()
    found = _by_key().get(key)
    if found is None and (match := _ID.search(key)):
        found = _by_key().get(match.group().lower())
    return found


def next_best_product(purchases: Sequence[str], candidates: Sequence[str] = ()) -> str | None:
    """The product to suggest next: the first candidate not bought, else from the catalog.

    From the catalog: the category bought most (ties: the most recent purchase's), a product
    not bought yet, priced closest to the average paid in that category (ties: lowest id).
    """
    bought = {_QUANTITY.sub("", p).strip().lower() for p in purchases}
    for candidate in candidates:
        if candidate.strip().lower() not in bought:
            return candidate.strip()
    known = [p for p in map(_find, purchases) if p is not None]
    if not known:
        return None
    counts = Counter(p.category for p in known)
    top = max(counts.values())
    category = next(p.category for p in reversed(known) if counts[p.category] == top)
    prices = [p.price for p in known if p.category == category]
    average = sum(prices, Decimal(0)) / len(prices)
    owned = {p.product_id for p in known}
    choices = [p for p in _catalog() if p.category == category and p.product_id not in owned]
    if not choices:
        return None
    return min(choices, key=lambda p: (abs(p.price - average), p.product_id)).name


def _code(prefix: str, customer: str) -> str:
    digest = hashlib.sha256(customer.strip().lower().encode()).hexdigest()[:6].upper()
    return f"{prefix}-{digest}"


def _first_name(customer: str) -> str:
    name = customer.strip()
    return name.split()[0] if name and not re.fullmatch(r"c\d+", name, re.IGNORECASE) else name


def _complained_before(history: Sequence[str]) -> int:
    """How many earlier reviews were negative or mixed (a leading label wins over the text)."""
    count = 0
    for item in history:
        head = item.split(":", 1)[0] if ":" in item[:12] else ""
        label = parse_label(head) or classify(item).label
        count += label in {"negative", "mixed"}
    return count


def draft_reply(request: ReplyRequest) -> str:
    """The reply to ``request`` (see the module docstring for the rules)."""
    sentiment = request.sentiment or classify(request.review).label
    name = _first_name(request.customer)
    the_product = f"the {request.product}" if request.product else "your order"
    suggestion = next_best_product(request.purchases, request.candidates)
    suggest = (
        f" Since you liked it, you might enjoy the {suggestion} next."
        if suggestion
        else " Have a look at our new arrivals for your next favourite."
    )
    if sentiment == "positive":
        return f"Hi {name}, thank you for the lovely review of {the_product}!{suggest}"
    if sentiment == "neutral":
        suggest = suggest.replace("Since you liked it, you", "You")
        return (
            f"Hi {name}, thanks for reviewing {the_product}. If anything would make it better "
            f"for you, just reply and tell us.{suggest}"
        )
    shipping = f"your next order ships free with code {_code('FREESHIP', request.customer)}"
    if sentiment == "mixed":
        return (
            f"Hi {name}, thank you for the honest review of {the_product}. We're glad parts of "
            f"it work for you and sorry about the rest; as a thank-you, {shipping}."
        )
    loyal = (request.tier or "") in _LOYAL_TIERS or len(request.purchases) >= _LOYAL_PURCHASES
    repeat = _complained_before(request.history)
    again = " again" if repeat else ""
    if loyal or repeat:
        offer = (
            f"please take 20% off your next order with code {_code('SORRY20', request.customer)}"
        )
    else:
        offer = shipping
    return (
        f"Hi {name}, we're sorry {the_product} let you down{again}. To make it right, {offer}. "
        f"Reply to this message and we'll also arrange a replacement or a refund."
    )
