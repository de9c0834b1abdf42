"""Build llmkit's product-review data set (reviews.tsv): 420 reviews in three classes.

Every sentence and fragment below was written for this kit. A review is a few sentences about one
of twelve made-up products: an opener (how the writer came to use it), remarks about its aspects
and a closing line. ``positive`` reviews praise, ``negative`` ones complain, ``mixed`` ones do both
and, when they close with a verdict, close undecided; two reviews in five have no verdict, so a classifier has to weigh the whole text, not spot one word. Reviews are
longer than the spam messages (30 to 90 words), which is what the second task is for.

    python make_reviews.py            # rewrites reviews.tsv next to this file
    python make_reviews.py --check    # only verifies that the file is current
"""

import random
import re
import sys
from pathlib import Path

SEED = 20261203
PER_CLASS = 140
OUT = Path(__file__).with_name("reviews.tsv")

# product -> (short name, aspects it has)
PRODUCTS = {
    "the Fernhill kettle": ("kettle", ["lid", "handle", "switch", "spout", "base"]),
    "the Marlow trail backpack": ("backpack", ["straps", "zips", "side pockets", "frame", "rain cover"]),
    "the Quillon desk lamp": ("lamp", ["dimmer", "arm", "base", "switch", "shade"]),
    "the Tavish two-person tent": ("tent", ["poles", "zips", "groundsheet", "guy lines", "porch"]),
    "the Brindle wool blanket": ("blanket", ["stitching", "edges", "weave", "colour", "weight"]),
    "the Oakum cast-iron pan": ("pan", ["handle", "base", "coating", "rim", "lid"]),
    "the Pellow wireless headphones": ("headphones", ["ear cushions", "battery", "buttons", "headband", "case"]),
    "the Corran folding bike": ("bike", ["hinge", "brakes", "gears", "saddle", "tyres"]),
    "the Skerry rain jacket": ("jacket", ["hood", "zips", "cuffs", "pockets", "seams"]),
    "the Holloway bread tin": ("tin", ["coating", "corners", "rim", "sides", "base"]),
    "the Ashby garden hose": ("hose", ["nozzle", "fittings", "reel", "coupling", "length"]),
    "the Dunmore alarm clock": ("clock", ["buttons", "display", "alarm tone", "snooze bar", "battery door"]),
}

OPENERS = [
    "I bought {product} {when} to replace {old}.",
    "{product^} arrived {when}, a present from {giver}.",
    "We have used {product} almost every day since {since}.",
    "After reading a few reviews I ordered {product} {when}.",
    "My {relative} talked me into {product} {when}.",
    "I picked up {product} at a market stall {when}, mostly on a whim.",
    "Our old {short} finally gave up, so {when} we tried {product}.",
    "I needed something for {use} and settled on {product}.",
]
WHEN = ["last spring", "in March", "a month ago", "before the holidays", "at the end of summer", "two weeks ago",
        "back in October", "this winter"]
SINCE = ["the spring", "March", "the holidays", "the end of summer", "we moved", "October", "the winter"]
OLD = ["one that had lasted ten years", "a cheap one that broke", "my sister's hand-me-down",
       "an older model from the same shop", "something I had been patching for ages"]
GIVER = ["my aunt", "a neighbour", "my partner", "the people at work", "an old school friend"]
RELATIVE = ["brother", "mother", "flatmate", "cousin", "grandfather"]
USE = ["a long walking holiday", "a small kitchen", "a drafty spare room", "early shifts", "weekend trips",
       "a new flat", "the allotment", "my commute"]

PRAISE = [
    "The {aspect} {feels|feel} solid and {has|have} not loosened at all.",
    "I was surprised by how well the {aspect} {is|are} made for the price.",
    "The {aspect} {works|work} exactly as described, every single time.",
    "Even after heavy use the {aspect} still {looks|look} new.",
    "Whoever designed the {aspect} clearly used one of these themselves.",
    "The {aspect} {is a small detail|are small details}, but {it is|they are} done properly.",
    "It copes with daily use without any fuss.",
    "It does its job quietly and I rarely have to think about it.",
    "Everyone who has borrowed it has asked where I got it.",
    "Setting it up took five minutes and the instructions were clear.",
    "It packs away neatly, which matters in a small home.",
    "It is lighter than I expected and still feels sturdy.",
]
COMPLAINTS = [
    "The {aspect} came loose within the first fortnight.",
    "The {aspect} {feels|feel} flimsy and I do not trust {it|them} to last.",
    "I had to return it once because the {aspect} arrived cracked.",
    "The {aspect} {sticks|stick}, so I end up forcing {it|them} most days.",
    "Nobody seems to have tested the {aspect} before selling it.",
    "The {aspect} started to wear through after a few weeks.",
    "It is much heavier than the photos suggest.",
    "The instructions were confusing and a part was missing.",
    "It rattles and creaks whenever I use it.",
    "Customer service took nine days to answer a simple email.",
    "It stopped working properly after about a month.",
    "For what it costs I expected far better finishing.",
]
BUT = ["That said,", "On the other hand,", "Still,", "Even so,", "Sadly, though,", "Against that,"]
CLOSE = {
    "positive": [
        "I would happily buy it again.", "Five stars from me.", "It has earned its place in the house.",
        "I have already ordered a second one as a gift.", "Highly recommended.",
        "No regrets at all.",
    ],
    "negative": [
        "I would not buy it again.", "One star, and only because zero is not allowed.",
        "I am sending it back.", "Save your money and look elsewhere.", "A disappointing purchase.",
        "I regret not choosing something else.",
    ],
    "mixed": [
        "So it is fine, but not more than fine.", "Three stars: good in parts.",
        "I will keep it, though I would think twice before buying another.",
        "Worth it if you can live with the flaws.", "Not bad, not great.",
        "I am still making up my mind about it.",
    ],
}


def agree(text, aspect):
    """``{is|are}`` -> the form that agrees with ``aspect`` (plural when it ends in s)."""
    return re.sub(r"\{([^{}|]*)\|([^{}|]*)\}", lambda m: m.group(2 if aspect.endswith("s") else 1), text)


def fill(rng, template, product, short, aspects):
    aspect = rng.choice(aspects)
    template = agree(template.replace("{aspect}", aspect), aspect)
    return (template.replace("{product^}", product[0].upper() + product[1:])
            .replace("{product}", product).replace("{short}", short)
            .replace("{when}", rng.choice(WHEN)).replace("{since}", rng.choice(SINCE))
            .replace("{old}", rng.choice(OLD)).replace("{giver}", rng.choice(GIVER))
            .replace("{relative}", rng.choice(RELATIVE)).replace("{use}", rng.choice(USE)))


def review(rng, label):
    product = rng.choice(sorted(PRODUCTS))
    short, aspects = PRODUCTS[product]
    parts = [fill(rng, rng.choice(OPENERS), product, short, aspects)]
    if label == "mixed":
        good = rng.sample(PRAISE, rng.randint(1, 2))
        bad = rng.sample(COMPLAINTS, rng.randint(1, 2))
        first, second = (good, bad) if rng.random() < 0.5 else (bad, good)
        parts += [fill(rng, t, product, short, aspects) for t in first]
        turn = fill(rng, second[0], product, short, aspects)
        turn = turn if turn.startswith("I ") else turn[0].lower() + turn[1:]
        parts.append(f"{rng.choice(BUT)} {turn}")
        parts += [fill(rng, t, product, short, aspects) for t in second[1:]]
    else:
        pool = PRAISE if label == "positive" else COMPLAINTS
        parts += [fill(rng, t, product, short, aspects) for t in rng.sample(pool, rng.randint(2, 4))]
    if rng.random() < 0.6:  # often no verdict at the end: the remarks have to decide
        parts.append(rng.choice(CLOSE[label]))
    return " ".join(parts)


def build():
    rng = random.Random(SEED)
    rows, seen = [], set()
    for label in ("positive", "negative", "mixed"):
        count = 0
        while count < PER_CLASS:
            text = review(rng, label)
            if text in seen:
                continue
            seen.add(text)
            rows.append((label, text))
            count += 1
    rng.shuffle(rows)
    return "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows)


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        sys.exit(0 if current == text else "reviews.tsv is not what make_reviews.py writes; run it to rebuild.")
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10)) - 1} reviews)")
