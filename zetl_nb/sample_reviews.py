"""Review texts for the retail sample: sentences that mean positive, negative, neutral or mixed.

:func:`review_text` writes one review for an intended label about a product of a category,
from hand-written sentence templates. The templates use what real reviews use — negation ("not
worth the price", "couldn't be happier"), intensifiers ("really", "very"), hedges ("a bit"),
contrast ("..., but ..."), faint praise inside a complaint and small gripes inside praise — so
a classifier has to read them, not just count words. Mixed reviews always pair strong praise
with a strong complaint about two different aspects of the product. Ratings follow the label
(:func:`rating_for`). Used by :mod:`zetl_nb.sample_retail`; deterministic given the ``Random``.
"""

from __future__ import annotations

import random
from typing import Final

__all__ = ["ASPECTS", "LABEL_WEIGHTS", "rating_for", "review_text"]

#: What a review talks about, per product category (two different ones in a mixed review).
ASPECTS: Final[dict[str, tuple[str, ...]]] = {
    "Electronics": (
        "battery life",
        "sound",
        "Bluetooth connection",
        "charging cable",
        "build quality",
        "companion app",
    ),
    "Home & Kitchen": ("handle", "lid", "blade", "heat control", "non-stick coating", "finish"),
    "Books": ("writing", "photos", "binding", "print quality", "maps", "index"),
    "Sports & Outdoors": ("zipper", "straps", "grip", "fabric", "stitching", "padding"),
    "Toys": ("pieces", "paint", "instructions", "box", "colours", "wheels"),
}

#: How often each label is drawn for a customer of each temper (positive, negative, neutral, mixed).
LABEL_WEIGHTS: Final[dict[str, tuple[int, int, int, int]]] = {
    "happy": (66, 8, 14, 12),
    "grumpy": (12, 52, 14, 22),
    "fickle": (34, 26, 16, 24),
}

_POSITIVE = (
    "Absolutely love {this}!",
    "Best {noun} I have ever owned.",
    "The {aspect} is excellent and it arrived quickly.",
    "Really happy with it: the {aspect} exceeded my expectations.",
    "Five stars. Would buy again.",
    "Great {noun} for the price.",
    "Works perfectly, no complaints at all.",
    "Couldn't be happier with this purchase.",
    "I was not disappointed, the {aspect} is superb.",
    "My {who} loves it.",
    "Solid and well made. Highly recommend.",
    "Very good {noun}, and the {aspect} is better than expected.",
    "The {aspect} is a bit stiff at first, but overall a fantastic {noun}.",
    "Never had a problem with it in {months} months of daily use.",
    "So much fun! The {aspect} is brilliant.",
    "Exactly what I needed, and the {aspect} is really impressive.",
    "I can't recommend {this} enough.",
    "Worth every penny.",
    "Gorgeous design and the {aspect} is top notch.",
    "Bought a second one for my {who}. Great {noun}.",
    "Delivery was a little late, but I love {this}.",
    "Not cheap, but worth it.",
)
_NEGATIVE = (
    "Terrible {noun}. It stopped working after {days} days.",
    "Very disappointed, the {aspect} is awful.",
    "Complete waste of money.",
    "Arrived damaged and customer service never answered my emails.",
    "Not good at all. The {aspect} is poor and it feels cheap.",
    "Don't buy this. I want my money back.",
    "The {aspect} broke within a week, so I returned it.",
    "Would not recommend {this} to anyone.",
    "Worst purchase I made this year.",
    "It is not worth the price.",
    "The {aspect} is flimsy and the {aspect2} is useless.",
    "I really wanted to like it, but it fell apart after {days} days.",
    "Cheaply made and the {aspect} is way too loose.",
    "Doesn't work as advertised. Very frustrating.",
    "The colour is nice, but it broke on the first day.",
    "One star. The {aspect} is defective.",
    "Never again. Slow delivery and a faulty {noun}.",
    "I hate how fragile the {aspect} is.",
    "Sadly {this} was not as described.",
    "Poor quality, the {aspect} cracked after {days} days.",
)
_NEUTRAL = (
    "Standard {noun}. Does the job.",
    "Arrived on {weekday}. Haven't used it much yet.",
    "Average {noun}, nothing special.",
    "It's okay for the price.",
    "Bought this as a replacement for my old one.",
    "Exactly as described.",
    "The {aspect} is fine. Three stars.",
    "Neither great nor terrible.",
    "Size is as expected and the colour matches the photos.",
    "Delivered in {days} days in plain packaging.",
    "Bought it for my {who}, who has not tried it yet.",
    "It does what it says on the box.",
    "The {aspect} is about what you would expect at this price.",
    "So-so. Some days it's fine.",
    "It comes with a manual and a spare part.",
)
_MIXED = (
    "Love the {aspect}, but the {aspect2} is terrible.",
    "The {aspect} is fantastic; however, it stopped working after {days} days.",
    "Great {noun} when it works, but it broke twice already.",
    "Excellent {aspect}, awful {aspect2}.",
    "Beautiful design. Sadly the {aspect} is really disappointing.",
    "The {aspect} is superb but the {aspect2} is useless.",
    "I love how it looks, but the {aspect} is very poor.",
    "Amazing {aspect}. Horrible {aspect2}.",
    "The {aspect} is great, the {aspect2} is a disaster.",
    "Really good {aspect}, although the {aspect2} broke after {days} days.",
    "My {who} loves it, but it arrived damaged.",
    "The {aspect} is perfect. The {aspect2}, on the other hand, is awful.",
)
_FILLERS = (
    "I bought it for my {who}.",
    "Ordered the {colour} one.",
    "Used it {uses} times so far.",
    "Delivered on a {weekday}.",
    "This is my second order from this shop.",
    "I use it at home and at work.",
)
_TEMPLATES: Final = {
    "positive": _POSITIVE,
    "negative": _NEGATIVE,
    "neutral": _NEUTRAL,
    "mixed": _MIXED,
}
_WHO = ("partner", "son", "daughter", "mum", "dad", "neighbour", "sister", "brother")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_COLOURS = ("black", "white", "red", "blue", "green", "grey")
_SINGULAR_S = frozenset({"atlas"})


def _slots(rng: random.Random, category: str, noun: str) -> dict[str, str]:
    aspect, aspect2 = rng.sample(ASPECTS[category], 2)
    noun = noun.lower()
    plural = noun.endswith("s") and noun not in _SINGULAR_S
    return {
        "noun": noun,
        "this": f"{'these' if plural else 'this'} {noun}",
        "aspect": aspect,
        "aspect2": aspect2,
        "who": rng.choice(_WHO),
        "days": str(rng.randint(2, 20)),
        "months": str(rng.randint(2, 14)),
        "uses": str(rng.randint(3, 30)),
        "weekday": rng.choice(_WEEKDAYS),
        "colour": rng.choice(_COLOURS),
    }


def _capitalized(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def review_text(rng: random.Random, label: str, category: str, noun: str) -> str:
    """One review meaning ``label`` about a ``noun`` (e.g. "Kettle") of ``category``.

    Positive and negative reviews sometimes say it twice; any review may carry a neutral remark
    ("I bought it for my dad.") before or after what it means.

    >>> review_text(random.Random(1), "negative", "Home & Kitchen", "Kettle")  # doctest: +SKIP
    'Complete waste of money. Delivered on a Friday.'
    """
    slots = _slots(rng, category, noun)
    templates = _TEMPLATES[label]
    chosen = [rng.choice(templates)]
    if label in {"positive", "negative"} and rng.random() < 0.3:
        second = rng.choice(templates)
        if second != chosen[0]:
            chosen.append(second)
    roll = rng.random()
    if roll < 0.2:
        chosen.insert(0, rng.choice(_FILLERS))
    elif roll < 0.4:
        chosen.append(rng.choice(_FILLERS))
    return " ".join(_capitalized(t.format(**slots)) for t in chosen)


def rating_for(rng: random.Random, label: str) -> int:
    """A star rating (1-5) that agrees with the label: 4-5 positive, 1-2 negative, 3 or so else."""
    roll = rng.random()
    if label == "positive":
        return 5 if roll < 0.65 else 4
    if label == "negative":
        return 1 if roll < 0.6 else 2
    if label == "neutral":
        return 3 if roll < 0.85 else 4
    return 3 if roll < 0.5 else (2 if roll < 0.75 else 4)
