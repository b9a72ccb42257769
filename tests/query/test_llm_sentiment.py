"""The offline sentiment classifier: graded on the generated reviews and on hand-written cases."""

from __future__ import annotations

from collections import Counter

import pytest

from zetl_nb.query.llm.sentiment import LABELS, Sentiment, classify, sentiment_label
from zetl_nb.sample_retail import generate_retail


def test_accuracy_on_the_generated_reviews() -> None:
    data = generate_retail()
    predicted = [sentiment_label(r[4]) for r in data.reviews]
    pairs = list(zip(data.labels, predicted, strict=True))
    accuracy = sum(a == b for a, b in pairs) / len(pairs)
    assert accuracy >= 0.97, f"accuracy {accuracy:.3f}"
    for label in LABELS:  # no label is sacrificed for the others
        mine = [p for a, p in pairs if a == label]
        recall = sum(p == label for p in mine) / len(mine)
        assert recall >= 0.95, f"{label}: recall {recall:.3f}, {Counter(mine)}"


def test_accuracy_on_another_seed() -> None:
    # Other draws of the same templates: slots and combinations the lexicon was not tuned on.
    data = generate_retail(seed=11, transactions=20_000, reviews=3000)
    pairs = [(a, sentiment_label(r[4])) for a, r in zip(data.labels, data.reviews, strict=True)]
    assert sum(a == b for a, b in pairs) / len(pairs) >= 0.97


EDGE_CASES = [
    # plain
    ("I love this kettle.", "positive"),
    ("Terrible product.", "negative"),
    ("The parcel arrived on Tuesday.", "neutral"),
    ("", "neutral"),
    # negation
    ("Not good.", "negative"),
    ("This is not a good blender at all.", "negative"),
    ("I don't think it's good.", "negative"),
    ("Not bad at all, actually.", "positive"),
    ("Never disappointed by this brand.", "positive"),
    ("It never works when I need it.", "negative"),
    ("I couldn't be happier with it!", "positive"),
    ("I can't recommend it enough.", "positive"),
    ("I can't recommend it.", "negative"),
    ("Would not buy again.", "negative"),
    ("No complaints whatsoever.", "positive"),
    ("It is not worth the money.", "negative"),
    # intensifiers and hedges
    ("Very good.", "positive"),
    ("Extremely disappointing.", "negative"),
    ("It's okay.", "neutral"),
    ("Slightly annoying hum, otherwise fine.", "neutral"),
    ("ABSOLUTELY TERRIBLE", "negative"),
    ("Best purchase ever!!!", "positive"),
    # contrast and mixed
    ("Love the design, but the battery is terrible.", "mixed"),
    ("Excellent sound, awful battery.", "mixed"),
    ("Great sound. However, it broke after two days.", "mixed"),
    ("The colour is nice, but it broke on the first day.", "negative"),
    ("It was a bit slow to arrive, but I love it.", "positive"),
    ("Although the price is high, the quality is excellent.", "positive"),
    ("Great headphones, although the case is a little flimsy.", "positive"),
    ("Fantastic kettle; the lid is slightly stiff.", "positive"),
    # lukewarm
    ("Average blender, nothing special.", "neutral"),
    ("Neither great nor terrible.", "neutral"),
    ("It does the job.", "neutral"),
    ("Three stars. It's fine.", "neutral"),
    ("Exactly as described.", "neutral"),
    # phrases
    ("Complete waste of money.", "negative"),
    ("It fell apart in a week.", "negative"),
    ("Worth every penny.", "positive"),
    ("Five stars, would buy again.", "positive"),
    ("Works like a charm :)", "positive"),
    ("Stopped working :(", "negative"),
    ("Too small and too loud.", "negative"),
]


@pytest.mark.parametrize(("text", "label"), EDGE_CASES)
def test_hand_written_cases(text: str, label: str) -> None:
    assert classify(text).label == label, classify(text)


def test_scores_say_why() -> None:
    mixed = classify("Love the sound, but the battery is terrible.")
    assert mixed == Sentiment("mixed", mixed.score, 3.0, 3.0)
    assert mixed.score < 0  # the clause after "but" weighs more
    assert classify("not good").score < 0 < classify("not bad").score
    assert classify("very good").score > classify("good").score > classify("a bit good").score


def test_deterministic_and_insensitive_to_layout() -> None:
    text = "Great   kettle!\nBut the lid\tbroke after a week."
    assert classify(text) == classify(text)
    assert classify(text).label == classify(" ".join(text.split())).label
    assert classify("don\u2019t buy this").label == classify("don't buy this").label == "negative"
