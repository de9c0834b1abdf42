"""The made-up Isle of Marrow: villages with facts, written up as short documents, and questions on them.

Everything here was written for llmkit. A village has a founding year, a trade, a landmark, a
festival and its month, a harbour or not, a population and a neighbour reached by a named path. The
same writer turns the facts into prose with varied sentences; ``knowledge_base()`` is the shipped one
(seed ``KB_SEED``, written to ``llmkit/data/knowledge/`` by ``make_knowledge.py``), and
``world(seed)`` makes fresh villages with other names, which the RAG reader is trained on, so it
learns to read a passage rather than to remember the island.
"""

from __future__ import annotations

import random

KB_SEED = 1707
ONSETS = ["B", "Br", "C", "Cr", "D", "Dr", "F", "G", "Gl", "H", "K", "L", "M", "N", "P", "Pr", "R", "S", "St", "T",
          "Th", "Tr", "V", "W", "Wh"]
NUCLEI = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ow", "ay"]
CODAS = ["", "n", "r", "l", "m", "ck", "th", "sk", "nd", "rr"]
ENDINGS = ["wick", "by", "ford", "mere", "holm", "stead", "ham", "ness", "combe", "thorpe", "ley", "mouth"]
TRADES = ["herring fishing", "slate quarrying", "wool weaving", "boat building", "cider pressing", "salt panning",
          "rope making", "peat cutting", "oyster farming", "clock mending", "honey keeping", "kelp burning"]
LANDMARKS = ["a round stone tower", "a leaning lighthouse", "a chapel with a green roof", "a stepped harbour wall",
             "a windmill with five sails", "an old toll bridge", "a ring of standing stones", "a walled herb garden",
             "a covered market hall", "a ruined watch house", "a wooden pier on iron legs", "a sundial on the green"]
FESTIVALS = ["the Lantern Walk", "the Net Blessing", "the Apple Wake", "the Tide Fair", "the Kite Day",
             "the Fiddle Night", "the Shearing Feast", "the Bonfire Moot", "the Boat Race", "the Bell Supper"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
PATHS = ["the ridge path", "the causeway", "the cliff stair", "the old drove road", "the ferry lane", "the mill track"]

FACT_SENTENCES = {
    "founded": ["{name} was founded in {founded}.", "The first houses of {name} went up in {founded}.",
                "{name} dates from {founded}, when settlers first cleared the ground."],
    "trade": ["Most families in {name} lived by {trade}.", "The main trade of {name} is {trade}.",
              "For generations {name} has earned its living from {trade}."],
    "landmark": ["Visitors come to see {landmark}, which stands near the centre.",
                 "The best known sight in {name} is {landmark}.",
                 "Above the rooftops rises {landmark}, the pride of the village."],
    "festival": ["Every {month} the village holds {festival}.", "{festival_cap} takes place in {name} each {month}.",
                 "In {month} the whole village turns out for {festival}."],
    "population": ["About {population} people live there today.", "The last count gave {name} {population} residents.",
                   "Its population is {population}."],
    "neighbour": ["{name} is linked to {neighbour} by {path}.", "To reach {neighbour}, walkers take {path}.",
                  "From {name}, {path} runs on to {neighbour}."],
    "harbour": ["Small boats shelter in the harbour below the village.", "There is no harbour, so boats land at "
                "the next cove."],
}
QUESTIONS = {
    "founded": ["In which year was {name} founded?", "When was {name} founded?"],
    "trade": ["What is the main trade of {name}?", "What do most families in {name} live by?"],
    "landmark": ["What is the best known sight in {name}?"],
    "festival": ["In which month does {name} hold its festival?"],
    "population": ["How many people live in {name}?"],
    "neighbour": ["Which path links {name} to {neighbour}?"],
}
ANSWER_KEY = {"founded": "founded", "trade": "trade", "landmark": "landmark", "festival": "month",
              "population": "population", "neighbour": "path"}


def village_names(rng: random.Random, n: int, avoid: set = frozenset()) -> list[str]:
    names = []
    while len(names) < n:
        name = rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) + rng.choice(ENDINGS)
        if name not in names and name not in avoid:
            names.append(name)
    return names


def world(seed: int, n: int, avoid: set = frozenset()) -> list[dict]:
    """``n`` villages with consistent facts (each neighbour is another village of the same world)."""
    rng = random.Random(seed)
    names = village_names(rng, n, avoid)
    villages = []
    for i, name in enumerate(names):
        villages.append({"name": name, "founded": str(rng.randint(1180, 1890)), "trade": rng.choice(TRADES),
                         "landmark": rng.choice(LANDMARKS), "festival": rng.choice(FESTIVALS),
                         "month": rng.choice(MONTHS), "population": str(rng.randint(40, 4800)),
                         "harbour": rng.random() < 0.5, "neighbour": names[(i + rng.randint(1, n - 1)) % n],
                         "path": rng.choice(PATHS)})
    return villages


def document(v: dict, rng: random.Random) -> str:
    """A short write-up of one village, its facts in a shuffled order after the founding."""
    fill = {**v, "festival_cap": v["festival"][0].upper() + v["festival"][1:]}
    order = ["trade", "landmark", "festival", "population", "neighbour", "harbour"]
    rng.shuffle(order)
    sentences = [rng.choice(FACT_SENTENCES["founded"])]
    for key in order:
        options = FACT_SENTENCES[key]
        sentences.append(options[0 if v["harbour"] else 1] if key == "harbour" else rng.choice(options))
    return f"# {v['name']}\n\n" + " ".join(s.format(**fill) for s in sentences) + "\n"


def questions(v: dict, rng: random.Random, per_village: int = 2) -> list[dict]:
    kinds = rng.sample(sorted(QUESTIONS), per_village)
    return [{"question": rng.choice(QUESTIONS[k]).format(**v), "answer": v[ANSWER_KEY[k]], "doc": v["name"],
             "kind": k} for k in kinds]


def knowledge_base(n: int = 40) -> tuple[dict, list[dict]]:
    """The shipped island: ``({village name: document}, questions)``."""
    villages = world(KB_SEED, n)
    rng = random.Random(KB_SEED + 1)
    docs = {v["name"]: document(v, rng) for v in villages}
    qs = [q for v in villages for q in questions(v, rng)]
    return docs, qs


def reader_examples(seed: int, n_villages: int, avoid: set) -> list[dict]:
    """(passage, question, answer) triples about fresh villages: what the RAG reader learns to read."""
    villages = world(seed, n_villages, avoid)
    rng = random.Random(seed + 1)
    out = []
    for v in villages:
        passage = document(v, rng)
        for kind in QUESTIONS:
            out.append({"passage": passage, "question": rng.choice(QUESTIONS[kind]).format(**v),
                        "answer": v[ANSWER_KEY[kind]]})
    return out
