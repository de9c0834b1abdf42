"""Build llmkit's small instruction-tuning set (instructions.json).

Each entry is an Alpaca-style object with exactly the keys ``instruction``,
``input`` and ``output``.  Every task has one short, unambiguous answer so a
fine-tuned model can be scored by exact or normalised match.  Word lists,
sentences and phrasings were written by the llmkit team; answers for the
computed tasks (arithmetic, unit conversion, counting, reversing, sorting,
Roman numerals, numbers in words, next day/month, even/odd) are calculated
here, and the hand-made word lists are checked against simple rules.

    python make_instructions.py           # rewrites instructions.json next to this file
    python make_instructions.py --check   # only verifies that the file is current
"""

import json
import random
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

SEED = 1234
PER_TASK = 28
OUT = Path(__file__).with_name("instructions.json")

# --------------------------------------------------------------------------
# Hand-written word lists and sentences
# --------------------------------------------------------------------------

PLURALS = {
    "cat": "cats", "box": "boxes", "child": "children", "mouse": "mice", "tooth": "teeth",
    "foot": "feet", "man": "men", "woman": "women", "goose": "geese", "city": "cities",
    "baby": "babies", "knife": "knives", "leaf": "leaves", "wolf": "wolves", "bus": "buses",
    "church": "churches", "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes",
    "sheep": "sheep", "deer": "deer", "ox": "oxen", "dish": "dishes", "fox": "foxes",
    "glass": "glasses", "lady": "ladies", "story": "stories", "key": "keys", "toy": "toys",
    "wife": "wives", "shelf": "shelves", "half": "halves", "loaf": "loaves", "brush": "brushes",
    "watch": "watches", "berry": "berries", "puppy": "puppies", "monkey": "monkeys",
    "class": "classes", "tax": "taxes", "photo": "photos", "piano": "pianos", "zoo": "zoos",
    "bench": "benches", "wish": "wishes", "calf": "calves", "thief": "thieves",
    "family": "families", "party": "parties", "country": "countries", "window": "windows",
    "river": "rivers", "pencil": "pencils", "kiss": "kisses", "day": "days",
}

PAST_TENSE = {
    "go": "went", "eat": "ate", "run": "ran", "swim": "swam", "write": "wrote", "see": "saw",
    "take": "took", "give": "gave", "sing": "sang", "drink": "drank", "begin": "began",
    "fly": "flew", "buy": "bought", "bring": "brought", "think": "thought", "teach": "taught",
    "catch": "caught", "sleep": "slept", "keep": "kept", "feel": "felt", "find": "found",
    "make": "made", "sit": "sat", "stand": "stood", "speak": "spoke", "break": "broke",
    "choose": "chose", "drive": "drove", "ride": "rode", "forget": "forgot", "know": "knew",
    "grow": "grew", "throw": "threw", "draw": "drew", "wear": "wore", "tell": "told",
    "sell": "sold", "hold": "held", "win": "won", "lose": "lost", "meet": "met", "pay": "paid",
    "say": "said", "leave": "left", "come": "came", "steal": "stole", "freeze": "froze",
    "shake": "shook", "hide": "hid", "bite": "bit", "walk": "walked", "play": "played",
    "jump": "jumped", "cry": "cried", "try": "tried", "stop": "stopped", "plan": "planned",
    "dance": "danced", "carry": "carried", "clap": "clapped", "cook": "cooked",
    "study": "studied", "shop": "shopped", "hope": "hoped",
}

ANTONYMS = {
    "hot": "cold", "cold": "hot", "up": "down", "down": "up", "left": "right", "day": "night",
    "night": "day", "black": "white", "true": "false", "false": "true", "yes": "no",
    "push": "pull", "pull": "push", "inside": "outside", "outside": "inside", "top": "bottom",
    "bottom": "top", "early": "late", "empty": "full", "full": "empty", "heavy": "light",
    "dark": "light", "fast": "slow", "slow": "fast", "wet": "dry", "dry": "wet",
    "tall": "short", "long": "short", "rich": "poor", "poor": "rich", "strong": "weak",
    "weak": "strong", "buy": "sell", "sell": "buy", "first": "last", "above": "below",
    "below": "above", "before": "after", "after": "before", "north": "south", "south": "north",
    "east": "west", "west": "east", "question": "answer", "alive": "dead", "asleep": "awake",
    "thick": "thin", "wide": "narrow", "narrow": "wide", "near": "far", "far": "near",
    "clean": "dirty", "dirty": "clean", "friend": "enemy", "cheap": "expensive",
    "expensive": "cheap", "remember": "forget", "forget": "remember", "increase": "decrease",
    "decrease": "increase", "maximum": "minimum", "minimum": "maximum", "always": "never",
    "never": "always", "visible": "invisible", "possible": "impossible", "love": "hate",
    "borrow": "lend", "lend": "borrow", "smooth": "rough", "polite": "rude",
    "success": "failure", "odd": "even", "positive": "negative", "negative": "positive",
    "deep": "shallow", "shallow": "deep", "floor": "ceiling", "sunrise": "sunset",
    "import": "export", "export": "import", "majority": "minority", "inhale": "exhale",
    "exhale": "inhale", "ancient": "modern", "victory": "defeat", "include": "exclude",
    "internal": "external", "ascend": "descend", "horizontal": "vertical",
    "vertical": "horizontal", "noisy": "quiet", "win": "lose", "entrance": "exit",
}

CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin",
    "Egypt": "Cairo", "Kenya": "Nairobi", "Canada": "Ottawa", "Australia": "Canberra",
    "Argentina": "Buenos Aires", "Mexico": "Mexico City", "Peru": "Lima", "Chile": "Santiago",
    "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen",
    "Poland": "Warsaw", "Greece": "Athens", "Portugal": "Lisbon", "Ireland": "Dublin",
    "Austria": "Vienna", "Hungary": "Budapest", "Russia": "Moscow", "China": "Beijing",
    "India": "New Delhi", "Thailand": "Bangkok", "Vietnam": "Hanoi", "South Korea": "Seoul",
    "Turkey": "Ankara", "Iran": "Tehran", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh",
    "Morocco": "Rabat", "Nigeria": "Abuja", "Ghana": "Accra", "Ethiopia": "Addis Ababa",
    "Cuba": "Havana", "Belgium": "Brussels", "Czech Republic": "Prague",
    "New Zealand": "Wellington", "United Kingdom": "London", "Philippines": "Manila",
    "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Nepal": "Kathmandu",
    "Afghanistan": "Kabul", "Romania": "Bucharest", "Bulgaria": "Sofia", "Croatia": "Zagreb",
    "Serbia": "Belgrade", "Jamaica": "Kingston", "Venezuela": "Caracas",
    "Uruguay": "Montevideo", "Malaysia": "Kuala Lumpur", "Lebanon": "Beirut",
    "Syria": "Damascus", "Jordan": "Amman", "Qatar": "Doha", "Uganda": "Kampala",
    "Zimbabwe": "Harare", "Senegal": "Dakar", "Estonia": "Tallinn", "Latvia": "Riga",
    "Lithuania": "Vilnius", "Slovakia": "Bratislava", "Slovenia": "Ljubljana",
}

POSITIVE = [
    "I absolutely loved the concert last night.",
    "This soup is delicious and warming.",
    "What a wonderful surprise, thank you so much!",
    "The new park is beautiful and the kids adore it.",
    "I'm thrilled with how the garden turned out.",
    "Our holiday was perfect from start to finish.",
    "The staff were friendly and incredibly helpful.",
    "This is the best book I have read all year.",
    "I feel great after my morning run.",
    "The puppy is adorable and so playful.",
    "My exam results were better than I hoped.",
    "The hotel room was spotless and comfortable.",
    "I really enjoyed working with you on this project.",
    "The sunset over the lake was breathtaking.",
    "Dinner was fantastic and the dessert was even better.",
    "I'm so proud of my little brother.",
    "The repair was quick and the price was fair.",
    "What a lovely, relaxing afternoon.",
    "The film was funny, clever and heartwarming.",
    "I love how bright and cheerful this room feels.",
    "The team played brilliantly tonight.",
    "Her kindness made my whole week.",
    "This app is simple to use and works perfectly.",
    "We had a great time at the beach.",
    "The new teacher is patient and inspiring.",
    "Thank you, the flowers you sent are gorgeous.",
]

NEGATIVE = [
    "The train was late again and I missed my meeting.",
    "This phone keeps crashing and I hate it.",
    "The food was cold and tasted awful.",
    "I'm really disappointed with the service here.",
    "The movie was boring and far too long.",
    "My headache is getting worse and I feel miserable.",
    "The hotel was dirty and the staff were rude.",
    "I lost my wallet and my whole day is ruined.",
    "The instructions were confusing and useless.",
    "It rained all weekend and the trip was a disaster.",
    "The package arrived broken and nobody will help.",
    "This is the worst coffee I have ever tasted.",
    "I'm tired of waiting in this endless queue.",
    "The party next door kept me awake all night, which was horrible.",
    "The shoes fell apart after a week.",
    "Our team played terribly and lost badly.",
    "The noise from the building site is unbearable.",
    "I regret buying this cheap, flimsy chair.",
    "The meeting was a complete waste of time.",
    "My flight was cancelled and I'm stuck at the airport.",
    "The soup was far too salty to eat.",
    "I feel lonely and sad today.",
    "The update made everything slower and more annoying.",
    "That was a rude and hurtful comment.",
    "The museum was overcrowded and stuffy, and I hated it.",
    "Sadly, the cake was dry and the icing was sickly.",
]

MISSPELLINGS = {
    "recieve": "receive", "definately": "definitely", "seperate": "separate",
    "occured": "occurred", "accomodate": "accommodate", "untill": "until",
    "tommorow": "tomorrow", "begining": "beginning", "beleive": "believe", "wierd": "weird",
    "goverment": "government", "enviroment": "environment", "neccessary": "necessary",
    "calender": "calendar", "freind": "friend", "adress": "address", "libary": "library",
    "probaly": "probably", "suprise": "surprise", "truely": "truly", "arguement": "argument",
    "existance": "existence", "foriegn": "foreign", "grammer": "grammar",
    "independant": "independent", "knowlege": "knowledge", "neice": "niece",
    "occassion": "occasion", "publically": "publicly", "reccomend": "recommend",
    "rythm": "rhythm", "sucess": "success", "thier": "their", "becuase": "because",
    "bycicle": "bicycle", "resturant": "restaurant", "vaccum": "vacuum", "writting": "writing",
    "finaly": "finally", "lenght": "length", "buisness": "business", "tounge": "tongue",
}

# (subject, past-tense verb, past participle, object) -> "The O was PP by the S."
PASSIVE = [
    ("cat", "chased", "chased", "mouse"), ("chef", "cooked", "cooked", "meal"),
    ("boy", "kicked", "kicked", "ball"), ("girl", "painted", "painted", "fence"),
    ("teacher", "marked", "marked", "test"), ("wind", "broke", "broken", "window"),
    ("dog", "bit", "bitten", "postman"), ("mechanic", "fixed", "fixed", "car"),
    ("baker", "baked", "baked", "cake"), ("storm", "damaged", "damaged", "roof"),
    ("child", "drew", "drawn", "picture"), ("author", "wrote", "written", "novel"),
    ("police officer", "caught", "caught", "thief"), ("builder", "built", "built", "wall"),
    ("gardener", "planted", "planted", "tree"), ("pilot", "flew", "flown", "plane"),
    ("nurse", "helped", "helped", "patient"), ("student", "answered", "answered", "question"),
    ("bird", "built", "built", "nest"), ("boy", "threw", "thrown", "stone"),
    ("thief", "stole", "stolen", "bike"), ("waiter", "served", "served", "soup"),
    ("artist", "painted", "painted", "portrait"), ("girl", "found", "found", "key"),
    ("cat", "knocked over", "knocked over", "vase"), ("driver", "parked", "parked", "bus"),
    ("band", "played", "played", "song"), ("scientist", "discovered", "discovered", "comet"),
    ("team", "won", "won", "match"), ("dog", "dug", "dug", "hole"),
    ("engineer", "designed", "designed", "bridge"), ("fox", "ate", "eaten", "chicken"),
    ("farmer", "fed", "fed", "horse"), ("doctor", "examined", "examined", "patient"),
    ("wave", "swept away", "swept away", "sandcastle"), ("judge", "read", "read", "verdict"),
]

COMPARATIVES = {
    "tall": ("taller", "tallest"), "big": ("bigger", "biggest"), "happy": ("happier", "happiest"),
    "good": ("better", "best"), "bad": ("worse", "worst"), "fast": ("faster", "fastest"),
    "small": ("smaller", "smallest"), "hot": ("hotter", "hottest"), "easy": ("easier", "easiest"),
    "busy": ("busier", "busiest"), "thin": ("thinner", "thinnest"), "large": ("larger", "largest"),
    "nice": ("nicer", "nicest"), "strong": ("stronger", "strongest"), "long": ("longer", "longest"),
    "short": ("shorter", "shortest"), "warm": ("warmer", "warmest"), "cold": ("colder", "coldest"),
    "young": ("younger", "youngest"), "heavy": ("heavier", "heaviest"),
    "funny": ("funnier", "funniest"), "sad": ("sadder", "saddest"), "wet": ("wetter", "wettest"),
    "safe": ("safer", "safest"), "wide": ("wider", "widest"), "bright": ("brighter", "brightest"),
    "dark": ("darker", "darkest"), "loud": ("louder", "loudest"), "kind": ("kinder", "kindest"),
    "cheap": ("cheaper", "cheapest"), "rich": ("richer", "richest"),
    "beautiful": ("more beautiful", "most beautiful"), "careful": ("more careful", "most careful"),
    "expensive": ("more expensive", "most expensive"),
    "interesting": ("more interesting", "most interesting"),
    "important": ("more important", "most important"),
}

SIMPLE_WORDS = [
    "apple", "garden", "window", "pencil", "rocket", "yellow", "button", "planet", "winter",
    "basket", "candle", "dragon", "forest", "guitar", "honey", "island", "jacket", "kitten",
    "lemon", "market", "number", "orange", "pocket", "rabbit", "silver", "ticket", "violin",
    "wizard", "zebra", "bridge", "castle", "desert", "engine", "flower", "hammer", "ladder",
    "mirror", "needle", "office", "parrot", "school", "tunnel", "bottle", "cookie", "music",
    "spider", "animal", "shadow", "cloud", "train", "stone", "river", "paper", "sugar",
]

REPEAT_WORDS = [
    "banana", "mississippi", "committee", "excellence", "bookkeeper", "assessment", "balloon",
    "coffee", "pepper", "letter", "strawberry", "necessary", "remember", "tomorrow",
    "successful", "parallel", "address", "dinner", "possession", "referee", "engineer",
    "lollipop", "giraffe", "cinnamon", "mammal", "hippopotamus", "bubble", "grammar",
    "teeth", "butterfly", "elephant", "pineapple", "raccoon", "kangaroo", "volleyball",
]

SORT_POOLS = [
    ["apple", "banana", "cherry", "grape", "kiwi", "lemon", "mango", "orange", "pear", "plum",
     "peach", "melon", "fig", "lime", "date"],
    ["zebra", "lion", "tiger", "horse", "camel", "otter", "badger", "rabbit", "eagle", "whale",
     "shark", "monkey", "panda", "goat", "donkey", "falcon"],
    ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown",
     "grey", "silver", "gold", "violet"],
    ["table", "chair", "lamp", "sofa", "shelf", "desk", "bed", "mirror", "rug", "clock",
     "stool", "cupboard"],
    ["river", "mountain", "valley", "ocean", "island", "desert", "forest", "lake", "canyon",
     "meadow", "glacier", "beach"],
]

EXTRA_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "We walked to the station in the rain.",
    "My sister plays the violin every evening.",
    "Please close the door when you leave.",
    "The library opens at nine on Saturdays.",
    "A small boat drifted slowly across the bay.",
    "He forgot his umbrella at the office again.",
    "Bread tastes best when it is still warm.",
    "Our neighbours have three cats and a parrot.",
    "The children built a snowman in the park.",
    "She reads a chapter before going to sleep.",
    "Turn left at the bakery and keep walking.",
    "The old clock in the hall stopped at midnight.",
    "I need to buy milk, eggs and bread.",
    "Birds sing loudly just before the sun rises.",
]

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

# name (singular, plural), target (singular, plural), factor: value_in_target = value * factor
UNITS = [
    (("kilometer", "kilometers"), ("meter", "meters"), Fraction(1000)),
    (("meter", "meters"), ("centimeter", "centimeters"), Fraction(100)),
    (("centimeter", "centimeters"), ("millimeter", "millimeters"), Fraction(10)),
    (("kilogram", "kilograms"), ("gram", "grams"), Fraction(1000)),
    (("liter", "liters"), ("milliliter", "milliliters"), Fraction(1000)),
    (("hour", "hours"), ("minute", "minutes"), Fraction(60)),
    (("minute", "minutes"), ("second", "seconds"), Fraction(60)),
    (("day", "days"), ("hour", "hours"), Fraction(24)),
    (("week", "weeks"), ("day", "days"), Fraction(7)),
    (("year", "years"), ("month", "months"), Fraction(12)),
    (("foot", "feet"), ("inch", "inches"), Fraction(12)),
    (("yard", "yards"), ("foot", "feet"), Fraction(3)),
    (("meter", "meters"), ("kilometer", "kilometers"), Fraction(1, 1000)),
    (("gram", "grams"), ("kilogram", "kilograms"), Fraction(1, 1000)),
    (("minute", "minutes"), ("hour", "hours"), Fraction(1, 60)),
    (("second", "seconds"), ("minute", "minutes"), Fraction(1, 60)),
    (("hour", "hours"), ("day", "days"), Fraction(1, 24)),
    (("centimeter", "centimeters"), ("meter", "meters"), Fraction(1, 100)),
]

# --------------------------------------------------------------------------
# Helpers that compute answers
# --------------------------------------------------------------------------


def number_words(n):
    """0..999999 in words, US style: 342 -> 'three hundred forty-two'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + (" " + number_words(rest) if rest else "")


def parse_number_words(text):
    """Inverse of number_words, used as a self-check."""
    values = {w: i for i, w in enumerate(ONES)}
    values.update({w: 10 * i for i, w in enumerate(TENS) if w})
    total, current = 0, 0
    for word in text.replace("-", " ").split():
        if word == "hundred":
            current *= 100
        elif word == "thousand":
            total, current = total + current * 1000, 0
        else:
            current += values[word]
    return total + current


ROMAN = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
         (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]


def to_roman(n):
    out = []
    for value, letters in ROMAN:
        while n >= value:
            out.append(letters)
            n -= value
    return "".join(out)


def from_roman(text):
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for i, ch in enumerate(text):
        v = values[ch]
        total += -v if i + 1 < len(text) and values[text[i + 1]] > v else v
    return total


def fmt(x):
    """Format an exact Fraction without trailing zeros: 2.5, 3, 0.25."""
    if x.denominator == 1:
        return str(x.numerator)
    s = f"{float(x):.6f}".rstrip("0").rstrip(".")
    assert Fraction(s) == x, x
    return s


def q(rng, word):
    """Quote a word in one of a few styles."""
    return rng.choice(["'{}'", '"{}"', "'{}'", "{}"]).format(word)


# --------------------------------------------------------------------------
# Task generators: each returns a list of (instruction, input, output)
# A task picks inline (input "") or separate-input phrasing at random.
# --------------------------------------------------------------------------


def pick_items(rng, pool, n):
    pool = list(pool)
    rng.shuffle(pool)
    return pool[:n]


def make(rng, inline, separate, fill, item_text, answer):
    if rng.random() < 0.5:
        return rng.choice(inline).format(**fill), "", answer
    return rng.choice(separate).format(**fill), item_text, answer


def task_plural(rng, n):
    inline = ["What is the plural of {w}?", "Give the plural form of the word {w}.",
              "Write the plural of {w}.", "Turn {w} into its plural form.",
              "One {b}, two ___? Fill in the blank with the plural.",
              "What do you call more than one {b}?"]
    separate = ["Convert the following noun to its plural form.", "Give the plural of this word.",
                "Write the plural form of the noun below.", "Make this word plural."]
    return [make(rng, inline, separate, {"w": q(rng, w), "b": w}, w, PLURALS[w])
            for w in pick_items(rng, sorted(PLURALS), n)]


def task_past(rng, n):
    inline = ["What is the past tense of {w}?", "Give the simple past form of the verb {w}.",
              "Change {w} to the past tense.", "Yesterday I ___ (to {b}). Fill in the blank.",
              "Write the past simple of the verb {w}."]
    separate = ["Convert this verb to the simple past tense.", "Write the past tense of the verb.",
                "Give the past simple form of the following verb.",
                "What is the past tense of this verb?"]
    return [make(rng, inline, separate, {"w": q(rng, w), "b": w}, w, PAST_TENSE[w])
            for w in pick_items(rng, sorted(PAST_TENSE), n)]


def task_antonym(rng, n):
    inline = ["What is the opposite of {w}?", "Give the antonym of {w}.",
              "Name the opposite of the word {w}.", "What word means the opposite of {w}?",
              "Opposite of {w}?"]
    separate = ["Give the opposite of this word.", "Write the antonym of the following word.",
                "Provide the word that means the opposite.", "What is the opposite of this word?"]
    return [make(rng, inline, separate, {"w": q(rng, w)}, w, ANTONYMS[w])
            for w in pick_items(rng, sorted(ANTONYMS), n)]


def task_addition(rng, n):
    out = []
    for _ in range(n):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        inline = ["What is {a} + {b}?", "Add {a} and {b}.", "Compute the sum of {a} and {b}.",
                  "Calculate {a} plus {b}.", "What do you get if you add {b} to {a}?"]
        separate = ["Add the two numbers.", "Solve the following addition.",
                    "Find the sum.", "Work out the total."]
        item = rng.choice([f"{a} + {b}", f"{a} and {b}", f"{a}, {b}"])
        out.append(make(rng, inline, separate, {"a": a, "b": b}, item, str(a + b)))
    return out


def task_subtraction(rng, n):
    out = []
    for _ in range(n):
        a, b = sorted(rng.sample(range(5, 1000), 2), reverse=True)
        inline = ["What is {a} - {b}?", "Subtract {b} from {a}.", "How much is {a} minus {b}?",
                  "Find the difference between {a} and {b}.", "Take {b} away from {a}."]
        if rng.random() < 0.6:
            item = f"{a} - {b}"
            separate = ["Solve this subtraction problem.", "Work out the answer.", "Calculate."]
        else:
            item = f"{a}, {b}"
            separate = ["Subtract the second number from the first.",
                        "Take the second number away from the first."]
        out.append(make(rng, inline, separate, {"a": a, "b": b}, item, str(a - b)))
    return out


def task_multiplication(rng, n):
    out = []
    for _ in range(n):
        a, b = rng.randint(2, 25), rng.randint(2, 12)
        inline = ["What is {a} x {b}?", "Multiply {a} by {b}.", "What is {a} times {b}?",
                  "Calculate the product of {a} and {b}.", "What is {a} * {b}?"]
        separate = ["Multiply these numbers.", "Find the product.", "Solve the multiplication."]
        item = rng.choice([f"{a} x {b}", f"{a} and {b}", f"{a} * {b}"])
        out.append(make(rng, inline, separate, {"a": a, "b": b}, item, str(a * b)))
    return out


def task_word_arithmetic(rng, n):
    out = []
    for _ in range(n):
        op = rng.choice(["plus", "minus", "times"])
        if op == "plus":
            a, b = rng.randint(0, 20), rng.randint(0, 20)
            value = a + b
            inline = ["What is {a} plus {b}?", "Add {a} and {b}. Answer with a number.",
                      "If you have {a} apples and get {b} more, how many apples do you have?"]
        elif op == "minus":
            a, b = sorted((rng.randint(0, 20), rng.randint(0, 20)), reverse=True)
            value = a - b
            inline = ["What is {a} minus {b}?", "Take {b} away from {a}. Answer with a number.",
                      "There are {a} birds on a wire and {b} fly away. How many are left?"]
        else:
            a, b = rng.randint(2, 12), rng.randint(2, 10)
            value = a * b
            inline = ["What is {a} times {b}?", "Multiply {a} by {b}. Answer with a number.",
                      "How much is {a} multiplied by {b}?"]
        words = {"a": number_words(a), "b": number_words(b)}
        if rng.random() < 0.5:
            out.append((rng.choice(inline).format(**words), "", str(value)))
        else:
            expr = f"{words['a']} {op} {words['b']}"
            instr = rng.choice(["Solve the calculation written in words. Give the answer in digits.",
                                "Work out this calculation and answer with a number.",
                                "Calculate the result of the following."])
            out.append((instr, expr, str(value)))
    return out


def task_number_words(rng, n):
    inline = ["Write the number {x} in words.", "Spell out the number {x}.",
              "How do you write {x} in words?", "Express {x} in words."]
    separate = ["Write this number in words.", "Spell out the following number.",
                "Convert the number to words."]
    nums = rng.sample(range(0, 100), n // 3) + rng.sample(range(100, 1000), n // 3)
    nums += rng.sample(range(1000, 10000), n - len(nums))
    out = []
    for x in nums:
        words = number_words(x)
        assert parse_number_words(words) == x
        out.append(make(rng, inline, separate, {"x": x}, str(x), words))
    return out


def task_units(rng, n):
    inline = ["Convert {v} {u} to {t}.", "How many {t} are in {v} {u}?",
              "{v} {u} is how many {t}?", "Express {v} {u} in {t}."]
    out = []
    seen = set()
    while len(out) < n:
        src, dst, factor = rng.choice(UNITS)
        if factor >= 1:
            value = Fraction(rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 1, 1.5, 2.5, 0.5]))
        else:
            value = rng.randint(2, 9) / factor
        result = value * factor
        if result.denominator != 1 or result < 2 or (src, value) in seen:
            continue
        seen.add((src, value))
        u = src[0] if value == 1 else src[1]
        fill = {"v": fmt(value), "u": u, "t": dst[1]}
        separate = [f"Convert the following to {dst[1]}.", f"How many {dst[1]} is this?",
                    f"Express this amount in {dst[1]}."]
        out.append(make(rng, inline, separate, fill, f"{fmt(value)} {u}",
                        f"{result.numerator} {dst[1]}"))
    return out


def task_uppercase(rng, n):
    inline = ["Write {w} in capital letters.", "Convert the word {w} to uppercase.",
              "Rewrite {w} using only capital letters.", "Put {w} in all caps."]
    separate = ["Convert the text to uppercase.", "Write the following in capital letters.",
                "Rewrite this in all capital letters."]
    phrases = SIMPLE_WORDS + ["good morning", "happy birthday", "thank you", "see you soon",
                              "well done", "open the door"]
    return [make(rng, inline, separate, {"w": q(rng, w) if " " not in w else f'"{w}"'}, w, w.upper())
            for w in pick_items(rng, phrases, n)]


def task_reverse(rng, n):
    inline = ["Reverse the letters of the word {w}.", "Spell {w} backwards.",
              "Write the word {w} backwards.", "What is {w} spelled in reverse?"]
    separate = ["Reverse the letters in this word.", "Spell the following word backwards.",
                "Write this word in reverse order."]
    return [make(rng, inline, separate, {"w": q(rng, w)}, w, w[::-1])
            for w in pick_items(rng, SIMPLE_WORDS, n)]


def task_sentiment(rng, n):
    inline = ['Is the sentiment of "{s}" positive or negative?',
              "Classify as positive or negative: {s}",
              'Someone wrote: "{s}" Is this positive or negative?']
    separate = ["Classify the sentiment of this sentence as positive or negative.",
                "Is the following review positive or negative?",
                "Label the sentiment of the text (positive or negative).",
                "Decide whether this sentence expresses a positive or a negative feeling."]
    items = [(s, "positive") for s in POSITIVE] + [(s, "negative") for s in NEGATIVE]
    return [make(rng, inline, separate, {"s": s}, s, label)
            for s, label in pick_items(rng, items, n)]


def task_capital(rng, n):
    inline = ["What is the capital of {c}?", "Name the capital city of {c}.",
              "Which city is the capital of {c}?", "Tell me the capital of {c}."]
    separate = ["Name the capital city of this country.", "What is the capital of the given country?",
                "Give the capital of the following country."]
    def named(c):
        return "the " + c if c in ("Philippines", "United Kingdom", "Czech Republic") else c
    return [make(rng, inline, separate, {"c": named(c)}, c, CAPITALS[c])
            for c in pick_items(rng, sorted(CAPITALS), n)]


def task_sort(rng, n):
    inline = ["Sort these words alphabetically: {l}.", "Put the following words in alphabetical order: {l}.",
              "Arrange in A to Z order: {l}.", "List these words in alphabetical order: {l}."]
    separate = ["Sort the words in alphabetical order.", "Arrange these words alphabetically, separated by commas.",
                "Put this list in alphabetical order."]
    out, seen = [], set()
    while len(out) < n:
        words = rng.sample(rng.choice(SORT_POOLS), rng.randint(3, 6))
        if words == sorted(words) or tuple(sorted(words)) in seen:
            continue
        seen.add(tuple(sorted(words)))
        shown = ", ".join(words)
        out.append(make(rng, inline, separate, {"l": shown}, shown, ", ".join(sorted(words))))
    return out


def task_count_letters(rng, n):
    inline = ["How many letters are in the word {w}?", "Count the letters in {w}.",
              "How many letters does {w} have?", "What is the number of letters in {w}?"]
    separate = ["Count the number of letters in this word.", "How many letters does this word have?"]
    return [make(rng, inline, separate, {"w": q(rng, w)}, w, str(len(w)))
            for w in pick_items(rng, SIMPLE_WORDS + REPEAT_WORDS, n)]


def task_count_char(rng, n):
    inline = ["How many times does the letter '{c}' appear in {w}?",
              "Count the letter '{c}' in the word {w}.",
              "How many '{c}'s are there in {w}?"]
    out = []
    for w in pick_items(rng, REPEAT_WORDS, n):
        counts = Counter(w)
        c = rng.choice([ch for ch in counts if counts[ch] > 1] or list(counts))
        separate = [f"Count how many times the letter '{c}' appears in the word below.",
                    f"How many times does '{c}' occur in this word?"]
        out.append(make(rng, inline, separate, {"c": c, "w": q(rng, w)}, w, str(w.count(c))))
    return out


def task_count_words(rng, n):
    inline = ['How many words are in the sentence "{s}"?', "Count the words in this sentence: {s}",
              'How many words does "{s}" contain?']
    separate = ["Count the number of words in the following sentence.",
                "How many words does this sentence contain?", "Give the word count of the text."]
    pool = EXTRA_SENTENCES + POSITIVE[::2] + NEGATIVE[::2]
    return [make(rng, inline, separate, {"s": s}, s, str(len(s.split())))
            for s in pick_items(rng, pool, n)]


def task_spelling(rng, n):
    inline = ["Correct the spelling of {w}.", "The word {w} is misspelled. Write it correctly.",
              "Fix the spelling: {w}", "How do you spell {w} correctly?"]
    separate = ["Correct the spelling of this word.", "This word is spelled wrong. Give the correct spelling.",
                "Fix the spelling mistake in the word."]
    return [make(rng, inline, separate, {"w": q(rng, w)}, w, MISSPELLINGS[w])
            for w in pick_items(rng, sorted(MISSPELLINGS), n)]


def task_passive(rng, n):
    inline = ["Rewrite in the passive voice: {s}", 'Change "{s}" into the passive voice.',
              "Put this sentence into the passive voice: {s}"]
    separate = ["Rewrite the sentence in the passive voice.", "Convert this active sentence to passive voice.",
                "Change the sentence from active to passive."]
    out = []
    for subj, verb, part, obj in pick_items(rng, PASSIVE, n):
        active = f"The {subj} {verb} the {obj}."
        passive = f"The {obj} was {part} by the {subj}."
        out.append(make(rng, inline, separate, {"s": active}, active, passive))
    return out


def task_compare(rng, n):
    out = []
    while len(out) < n:
        a, b = rng.sample(range(1, 1000), 2)
        if rng.random() < 0.4:   # digit swaps make the comparison less trivial
            s = str(a)
            if len(s) > 1 and s[::-1] != s and s[-1] != "0":
                b = int(s[::-1])
        if a == b:
            continue
        big = rng.random() < 0.6
        answer = str(max(a, b) if big else min(a, b))
        word = rng.choice(["larger", "bigger", "greater"]) if big else rng.choice(["smaller", "lower"])
        inline = [f"Which number is {word}: {{a}} or {{b}}?", f"Which is {word}, {{a}} or {{b}}?",
                  f"Of {{a}} and {{b}}, which is {word}?"]
        separate = [f"Which of these two numbers is {word}?", f"Give the {word} of the two numbers."]
        out.append(make(rng, inline, separate, {"a": a, "b": b}, f"{a}, {b}", answer))
    return out


def task_even_odd(rng, n):
    inline = ["Is {x} even or odd?", "Is the number {x} odd or even?", "Tell me whether {x} is even or odd.",
              "Even or odd: {x}?"]
    separate = ["Say whether the number is even or odd.", "Is this number odd or even?"]
    return [make(rng, inline, separate, {"x": x}, str(x), "even" if x % 2 == 0 else "odd")
            for x in rng.sample(range(0, 2000), n)]


def task_next_day_month(rng, n):
    items = [(kind, name, step) for kind, names in (("day", DAYS), ("month", MONTHS))
             for name in names for step in (1, -1)]
    out = []
    for kind, name, step in pick_items(rng, items, n):
        names = DAYS if kind == "day" else MONTHS
        answer = names[(names.index(name) + step) % len(names)]
        rel = "after" if step == 1 else "before"
        what = "day of the week" if kind == "day" else "month"
        inline = [f"What {what} comes {rel} {{x}}?", f"Which {what} is right {rel} {{x}}?",
                  f"Name the {what} that comes {rel} {{x}}."]
        separate = [f"Name the {what} that comes {rel} the given one.",
                    f"What {what} comes directly {rel} this one?"]
        out.append(make(rng, inline, separate, {"x": name}, name, answer))
    return out


def task_roman(rng, n):
    out = []
    for x in rng.sample(range(1, 3000), n):
        if rng.random() < 0.5:
            inline = ["Write {x} in Roman numerals.", "What is {x} as a Roman numeral?",
                      "Convert {x} to Roman numerals."]
            separate = ["Convert this number to Roman numerals.", "Write the number as a Roman numeral."]
            out.append(make(rng, inline, separate, {"x": x}, str(x), to_roman(x)))
        else:
            r = to_roman(x)
            inline = ["What number is the Roman numeral {r}?", "Convert the Roman numeral {r} to a number.",
                      "What is {r} in ordinary digits?"]
            separate = ["Convert this Roman numeral to an ordinary number.", "What number does this Roman numeral stand for?"]
            out.append(make(rng, inline, separate, {"r": r}, r, str(x)))
        assert from_roman(to_roman(x)) == x
    return out


def task_comparative(rng, n):
    out = []
    for adj in pick_items(rng, sorted(COMPARATIVES), n):
        form = rng.choice(["comparative", "superlative"])
        answer = COMPARATIVES[adj][0 if form == "comparative" else 1]
        inline = [f"What is the {form} form of {{w}}?", f"Give the {form} of the adjective {{w}}.",
                  f"Write the {form} of {{w}}."]
        separate = [f"Give the {form} form of this adjective.", f"Write the {form} of the following adjective."]
        out.append(make(rng, inline, separate, {"w": q(rng, adj)}, adj, answer))
    return out


TASKS = {
    "plural": task_plural, "past_tense": task_past, "antonym": task_antonym,
    "addition": task_addition, "subtraction": task_subtraction,
    "multiplication": task_multiplication, "word_arithmetic": task_word_arithmetic,
    "number_to_words": task_number_words, "unit_conversion": task_units,
    "uppercase": task_uppercase, "reverse_word": task_reverse, "sentiment": task_sentiment,
    "capital_city": task_capital, "alphabetical_sort": task_sort,
    "count_letters": task_count_letters, "count_letter_occurrences": task_count_char,
    "count_words": task_count_words, "spelling_fix": task_spelling,
    "passive_voice": task_passive, "compare_numbers": task_compare, "even_odd": task_even_odd,
    "next_day_or_month": task_next_day_month, "roman_numerals": task_roman,
    "comparative_superlative": task_comparative,
}

# --------------------------------------------------------------------------
# Self-checks on the hand-made lists
# --------------------------------------------------------------------------

IRREGULAR_PLURALS = {"child", "mouse", "tooth", "foot", "man", "woman", "goose", "sheep", "deer", "ox"}
IRREGULAR_PAST = {"go", "eat", "run", "swim", "write", "see", "take", "give", "sing", "drink",
                  "begin", "fly", "buy", "bring", "think", "teach", "catch", "sleep", "keep", "feel",
                  "find", "make", "sit", "stand", "speak", "break", "choose", "drive", "ride", "forget",
                  "know", "grow", "throw", "draw", "wear", "tell", "sell", "hold", "win", "lose",
                  "meet", "pay", "say", "leave", "come", "steal", "freeze", "shake", "hide", "bite"}


def regular_plural(w):
    if w.endswith(("s", "x", "ch", "sh")) or w in ("potato", "tomato", "hero"):
        return w + "es"
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    if w.endswith("fe"):
        return w[:-2] + "ves"
    if w.endswith("f"):
        return w[:-1] + "ves"
    return w + "s"


def regular_past(w):
    if w.endswith("e"):
        return w + "d"
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ied"
    if w in ("stop", "plan", "clap", "shop"):
        return w + w[-1] + "ed"
    return w + "ed"


def check_lists():
    for w, p in PLURALS.items():
        assert w in IRREGULAR_PLURALS or p == regular_plural(w), (w, p)
    for w, p in PAST_TENSE.items():
        assert w in IRREGULAR_PAST or p == regular_past(w), (w, p)
    for w, a in ANTONYMS.items():
        assert w != a and a.isalpha()
    assert not set(POSITIVE) & set(NEGATIVE)
    for wrong, right in MISSPELLINGS.items():
        assert wrong != right and wrong not in MISSPELLINGS.values()
    for s in EXTRA_SENTENCES + POSITIVE + NEGATIVE:
        assert "-" not in s and "  " not in s


def build():
    check_lists()
    rng = random.Random(SEED)
    entries = []
    for name, task in TASKS.items():
        items = task(rng, PER_TASK)
        assert len(items) == PER_TASK, name
        entries += [{"instruction": i, "input": x, "output": o} for i, x, o in items]
    rng.shuffle(entries)
    return entries


def check(entries):
    assert len(entries) >= 600
    assert all(list(e) == ["instruction", "input", "output"] for e in entries)
    assert all(isinstance(v, str) and v == v.strip() for e in entries for v in e.values())
    assert all(e["instruction"] and e["output"] for e in entries)
    keys = [(e["instruction"], e["input"]) for e in entries]
    assert len(keys) == len(set(keys)), "duplicate prompt"
    empty = sum(e["input"] == "" for e in entries) / len(entries)
    assert empty >= 0.4, empty
    return empty


def main():
    entries = build()
    empty = check(entries)
    data = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        print("up to date" if current == data else "instructions.json is STALE")
        sys.exit(0 if current == data else 1)
    OUT.write_text(data, encoding="utf-8", newline="\n")
    print(f"wrote {OUT.name}: {len(entries)} entries, {len(TASKS)} task types x {PER_TASK}, "
          f"{empty:.1%} with empty input")


if __name__ == "__main__":
    main()
