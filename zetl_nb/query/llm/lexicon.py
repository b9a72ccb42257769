"""The word lists of the offline sentiment classifier (:mod:`.sentiment`).

Weights are on one scale: about 1 for a mild word ("decent", "slow"), 2 for a clear one ("good"
is 1.5, "disappointed" 2.5) and 3 for the strongest ("love", "terrible", "waste of money"). Words
are lower case; phrases are tuples of tokens matched before single words, so "stopped working"
counts once and "couldn't be happier" is not read as a negation of "happier".
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = [
    "CONTRAST",
    "DIMINISHERS",
    "INTENSIFIERS",
    "NEGATORS",
    "PHRASES",
    "WORDS",
]


def _words(text: str) -> list[str]:
    return text.split()


def _weights(spec: str, sign: float) -> dict[str, float]:
    """``"3: love adore | 2: happy"`` → ``{"love": 3.0, "adore": 3.0, "happy": 2.0}`` (signed)."""
    out: dict[str, float] = {}
    for group in spec.split("|"):
        weight, _, words = group.partition(":")
        for word in words.split():
            out[word] = sign * float(weight)
    return out


_POSITIVE = """
3: love loved loves adore adored amazing awesome excellent fantastic perfect outstanding superb
   wonderful brilliant best flawless incredible delighted stellar exceptional phenomenal
   magnificent marvelous marvellous thrilled ecstatic
|2.5: great impressed impressive exceeded exceeds favorite favourite gorgeous perfectly superior
   beautifully
|2: happy pleased glad enjoy enjoyed enjoying enjoys recommend recommended reliable beautiful
   lovely durable bargain fun elegant wow terrific satisfying excellently
|1.5: good nice solid sturdy comfortable satisfied worth helpful friendly cozy cosy crisp smooth
   stylish handy useful effective sleek tasty delicious cute charming quiet
|1: decent easy fast quick clear premium smart neat responsive intuitive
|0.5: works thanks thank bright
|0.3: ok okay fine adequate
"""

_NEGATIVE = """
3: hate hated hates terrible awful horrible worst useless garbage junk rubbish defective faulty
   unusable disaster disgusting pathetic appalling dreadful furious ripoff scam
|2.5: disappointed disappointing disappointment broken broke waste wasted damaged frustrating
   frustrated unhappy regret stinks sucks refused
|2: poor poorly bad flimsy uncomfortable annoying annoyed upset fails failed failing failure
   died dead unreliable overpriced worse avoid cracked rusted rusty overheats overheating leaks
   leaking leaked leaky rude mess inferior
|1.2: slow late delayed
|1.5: noisy problem problems missing wrong mediocre boring scratched scratches
   lacking lacks weak fragile smells refund returned stiff dented wobbly unclear
   confusing difficult sloppy
|1: issue issues meh expensive sadly unfortunately complaint complain cheaply hard tiny dull
|0.8: cheap
|0.2: average
"""

#: Single words → signed weight.
WORDS: Final = MappingProxyType({**_weights(_POSITIVE, 1.0), **_weights(_NEGATIVE, -1.0)})

#: Multi-word expressions → signed weight (tokens as the tokenizer yields them).
PHRASES: Final = MappingProxyType(
    {
        tuple(text.replace("'", "").split()): weight
        for text, weight in {
            # positive
            "couldn't be happier": 3.0,
            "could not be happier": 3.0,
            "can't complain": 1.2,
            "cannot complain": 1.2,
            "no complaints": 1.5,
            "no issues": 1.2,
            "no problems": 1.2,
            "no issue": 1.2,
            "no problem": 1.2,
            "without any issues": 1.2,
            "without any problems": 1.2,
            "well made": 1.5,
            "never had a problem": 1.5,
            "never had any problems": 1.5,
            "not disappointed": 1.5,
            "works great": 2.5,
            "works perfectly": 3.0,
            "works well": 2.0,
            "works like a charm": 3.0,
            "worth every penny": 3.0,
            "worth the money": 2.0,
            "worth it": 2.0,
            "buy again": 2.0,
            "better than expected": 2.5,
            "top notch": 3.0,
            "over the moon": 3.0,
            "bang for the buck": 2.0,
            "five stars": 3.0,
            "5 stars": 3.0,
            "four stars": 1.5,
            "4 stars": 1.5,
            "does the job": 0.4,
            "as described": 0.3,
            "as expected": 0.3,
            "as advertised": 0.3,
            # negative
            "waste of money": -3.0,
            "waste of time": -3.0,
            "stopped working": -2.5,
            "quit working": -2.5,
            "fell apart": -3.0,
            "falls apart": -3.0,
            "falling apart": -3.0,
            "not worth": -2.0,
            "never again": -2.5,
            "money back": -2.0,
            "let down": -2.0,
            "let me down": -2.5,
            "rip off": -3.0,
            "worse than expected": -2.5,
            "not as described": -2.0,
            "not as expected": -1.5,
            "not as advertised": -2.0,
            "nothing special": -0.4,
            "one star": -3.0,
            "1 star": -3.0,
            "zero stars": -3.0,
            "two stars": -1.5,
            "2 stars": -1.5,
            "don't buy": -2.5,
            "do not buy": -2.5,
            "doesn't work": -2.5,
            "does not work": -2.5,
            "didn't work": -2.5,
            "did not work": -2.5,
            "won't turn on": -2.5,
            "never works": -2.5,
            "never worked": -2.5,
            "not working": -2.5,
            "no longer works": -2.5,
            "stopped charging": -2.5,
            # neutral markers (weight 0: they end a negation scope without a score)
            "three stars": 0.0,
            "3 stars": 0.0,
            "so so": 0.0,
        }.items()
    }
)

#: Words that flip the sentiment of the next few words ("not good", "never works").
NEGATORS: Final = frozenset(
    _words(
        """not no never none nothing nobody neither nor without cannot barely hardly scarcely
    dont doesnt didnt isnt wasnt arent werent cant couldnt wouldnt shouldnt wont hasnt havent
    hadnt aint"""
    )
)

#: Words that strengthen the next sentiment word, with their factor.
INTENSIFIERS: Final = MappingProxyType(
    {
        "very": 1.5,
        "really": 1.4,
        "extremely": 1.8,
        "so": 1.4,
        "super": 1.5,
        "incredibly": 1.8,
        "absolutely": 1.7,
        "totally": 1.5,
        "completely": 1.6,
        "utterly": 1.8,
        "truly": 1.4,
        "highly": 1.5,
        "especially": 1.3,
        "remarkably": 1.5,
        "exceptionally": 1.7,
        "such": 1.3,
        "most": 1.3,
        "seriously": 1.4,
        "insanely": 1.8,
        "ridiculously": 1.6,
        "pretty": 1.0,
        "quite": 1.1,
        "rather": 0.9,
    }
)

#: Words (and two-word hedges, joined by a space) that weaken the next sentiment word.
DIMINISHERS: Final = MappingProxyType(
    {
        "slightly": 0.5,
        "somewhat": 0.6,
        "fairly": 0.7,
        "mildly": 0.5,
        "marginally": 0.5,
        "a bit": 0.5,
        "a little": 0.5,
        "kind of": 0.6,
        "sort of": 0.6,
        "a tad": 0.5,
    }
)

#: Contrast words: the clause before counts less, the clause after more ("good, but ...").
CONTRAST: Final = frozenset(
    {"but", "however", "yet", "except", "though", "although", "whereas", "otherwise"}
)
