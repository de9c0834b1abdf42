"""Hidden-test checks for stage 9: instruction fine-tuning.

Each ``check_*`` runs the student's function or class on small seeded inputs (a toy character
tokenizer, random id lists), compares the result with the reference solution, and on a mismatch
names the known mistake whose result the student's matches: an ``### Input:`` section for an empty
input, padding not masked with -100, the first pad not kept as the end token, no truncation to
``allowed_max_length``, inputs and targets not shifted, the prompt mask off by one, and so on.

Under trusted grading the student's code runs in their kernel: inputs travel as data, the toy
tokenizer is lent (each use asks the grader), and the student's own ``format_input`` is the one the
notebook binds (``notebook_name``), so a mistake there is not charged again in the dataset.
"""

from __future__ import annotations

import torch

from llmkit.i18n.runtime import N_, _

from . import GradingError, assert_defined_in_notebook, call_checked, seeded, text_difference, with_hint
from .lora import notebook_name, type_name
from .remote import is_remote

PAD = 50256
PREAMBLE = ("Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request.")
RESPONSE_HEADER = "\n\n### Response:\n"

HINTS = {
    # format_input
    "input_when_empty": N_("the prompt has an '### Input:' section although the input is empty; add that section only "
                           "when entry['input'] is not empty."),
    "input_missing": N_("the '### Input:' section is missing; add '\\n\\n### Input:\\n' + the input when "
                        "entry['input'] is not empty."),
    "response_in_prompt": N_("the prompt already holds '### Response:'; format_input stops after the instruction (and "
                             "input): the response header is added with the output."),
    "no_blank_line": N_("the sections must be separated by an empty line ('\\n\\n### Instruction:\\n')."),
    # TRANSLATORS: keep the quoted preamble in English: the prompt must contain exactly this text.
    "no_preamble": N_("the prompt must start with the preamble 'Below is an instruction that describes a task. "
                      "Write a response that appropriately completes the request.'."),
    # InstructionDataset
    "header_missing": N_("the response header is missing; the text is format_input(entry) + '\\n\\n### Response:\\n' + "
                         "entry['output']."),
    "output_missing": N_("the output is missing; the text is format_input(entry) + '\\n\\n### Response:\\n' + "
                         "entry['output']."),
    # custom_collate_fn
    "no_mask": N_("the padding is not masked: in the targets, replace every pad after the first with ignore_index "
                  "(-100), so the loss skips it."),
    "mask_all": N_("every pad is masked, the first one too: keep the first pad in the targets as the end-of-text token "
                   "the model must learn to emit; mask only the pads after it."),
    "no_cut": N_("no truncation to allowed_max_length: cut inputs and targets to allowed_max_length when it is given."),
    "no_shift": N_("inputs and targets are not shifted: the targets are the inputs moved one position to the left "
                   "(targets = padded[1:], inputs = padded[:-1])."),
    "no_end_token": N_("no end token is added: pad every item to the longest length + 1, so even the longest item gets "
                       "one <|endoftext|> to predict."),
    "one_end_token_per_batch": N_("only one end token is kept for the whole batch: every row keeps its own first pad "
                                  "(at position len(item) - 1 of its targets) and masks the pads after it; look for "
                                  "the first pad row by row, not in the flattened batch."),
    "one_length_for_all_rows": N_("the padding is masked from one item's length in every row (the last item's n, used "
                                  "after the loop); each row has its own length: mask its targets from position "
                                  "len(item) on, inside the loop."),
    "items_changed": N_("the items it is given are changed (e.g. item += [pad]): copy each item first, or the "
                        "dataset's items grow with every batch."),
    "inputs_masked": N_("the inputs contain ignore_index; only the targets are masked, the inputs keep their pad ids."),
    # mask_prompt_targets
    "mask_first_response": N_("the first response token is hidden too: targets[i] predicts token i + 1, so mask only "
                              "the first prompt_length - 1 targets of each row."),
    "mask_one_short": N_("one prompt token too few is masked: mask the first prompt_length - 1 targets of each row."),
    "fixed_ignore": N_("the masked targets hold -100 although ignore_index says otherwise; use ignore_index."),
    # split_instructions, score_responses
    "split_order": N_("the splits come back as (train, validation, test); the book's order is train, test, "
                      "validation."),
    "split_rounding": N_("round the sizes down with int(), as the book does; validation gets the rest."),
    "split_shuffled": N_("the entries are reordered; cut the data in file order, without shuffling."),
    "percentage": N_("return a fraction between 0 and 1, not a percentage."),
    "not_stripped": N_("strip surrounding whitespace from both texts before comparing."),
    "not_normalised": N_("compare normalise(output) with normalise(response) (lowercase, no punctuation, single "
                         "spaces)."),
}

# Hints the course's mistake table does not simulate end to end (each notebook there takes long to grade):
# tests/test_grading_instruction.py names every one of them with a mutated solution.
UNIT_TESTED = "named by a mutated solution in tests/test_grading_instruction.py"
NOT_SIMULATED = {
    "input_missing": UNIT_TESTED,
    "response_in_prompt": UNIT_TESTED,
    "no_blank_line": UNIT_TESTED,
    "no_preamble": UNIT_TESTED,
    "output_missing": UNIT_TESTED,
    "no_end_token": UNIT_TESTED,
    "items_changed": UNIT_TESTED,
    "inputs_masked": UNIT_TESTED,
    "mask_one_short": UNIT_TESTED,
    "fixed_ignore": UNIT_TESTED,
    "split_rounding": UNIT_TESTED,
    "split_shuffled": UNIT_TESTED,
    "percentage": UNIT_TESTED,
    "not_normalised": UNIT_TESTED,
}

ENTRIES = [
    {"instruction": "Give the plural of the noun.", "input": "fox", "output": "foxes"},
    {"instruction": "What is 12 plus 30?", "input": "", "output": "42"},
    {"instruction": "Sort these words alphabetically.", "input": "pear, apple, fig", "output": "apple, fig, pear"},
    {"instruction": "Name a colour of the sky on a clear day.", "input": "", "output": "Blue."},
    {"instruction": "Rewrite in the passive voice.", "input": "The dog found the ball.\nIt was red.",
     "output": "The ball was found by the dog. It was red."},
]


def _describe(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CharTokenizer:
    """A toy tokenizer for the checks: one id (3..202) per character."""

    def encode(self, text, **kwargs):  # **kwargs: students may pass allowed_special=...
        return [3 + ord(ch) % 200 for ch in text]

    def decode(self, ids):
        return "".join(chr(int(i) - 3) for i in ids)


# --------------------------------------------------------------------------- the prompt


def check_format_input(fn):
    """The Alpaca prompt, exactly; ``### Input:`` only when the input is not empty."""
    from llmkit_solutions.instruction import format_input

    assert_defined_in_notebook(fn)
    for entry in ENTRIES:
        what = f"format_input({_describe(entry, 70)})"
        got = call_checked(what, fn, dict(entry))
        expected = format_input(entry)
        if got == expected:
            continue
        if not isinstance(got, str):
            raise GradingError(_("{what} returned {type_name}; return the prompt as one string.").format(
                what=what, type_name=type_name(got)))
        if not entry["input"] and got.rstrip() == (expected + "\n\n### Input:").rstrip():
            raise GradingError(_hinted(what, "input_when_empty"))
        if entry["input"] and "### Input:" not in got:
            raise GradingError(_hinted(what, "input_missing"))
        if got.startswith(expected) and "### Response:" in got[len(expected):]:
            raise GradingError(_hinted(what, "response_in_prompt"))
        for mistake, applies in (("no_blank_line", got.replace("\n\n", "\n") == expected.replace("\n\n", "\n")),
                                 ("no_preamble", not got.startswith(PREAMBLE))):
            if applies:
                # TRANSLATORS: {hint} names the mistake; {where} is "at character 12: yours '...', expected '...'".
                raise GradingError(_("{what}: {hint} The prompts differ {where}.").format(
                    what=what, hint=_(HINTS[mistake]), where=text_difference(got, expected)))
        raise GradingError(_("{what} differs from the Alpaca prompt {where}.").format(
            what=what, where=text_difference(got, expected)))


def _hinted(what: str, mistake: str) -> str:
    """``what: <the hint of mistake>``, the hint in the current language."""
    # TRANSLATORS: {what} is the checked call or object, {hint} a sentence naming the mistake.
    return _("{what}: {hint}").format(what=what, hint=_(HINTS[mistake]))


def _as_ids(item, what):
    try:
        return [int(i) for i in (item.tolist() if isinstance(item, torch.Tensor) else item)]
    except (TypeError, ValueError):
        raise GradingError(_("{what} should be a list of token ids, got {got}.").format(
            what=what, got=_describe(item))) from None


def check_instruction_dataset(cls):
    """Item i is the ids of format_input(entry) + '\\n\\n### Response:\\n' + output; mask_prompt items are pairs."""
    from llmkit_solutions.instruction import InstructionDataset, _prompt_length, format_input

    assert_defined_in_notebook(cls)
    tokenizer = CharTokenizer()
    entries = [dict(e) for e in ENTRIES]
    # The student's own format_input, if there is one: a mistake there already cost its points.
    own_format = notebook_name(cls, "format_input")
    student = call_checked("InstructionDataset(data, tokenizer)", cls, entries, tokenizer)
    reference = InstructionDataset(entries, tokenizer)
    if call_checked("len(InstructionDataset(data, tokenizer))", len, student) != len(entries):
        raise GradingError(_("len(InstructionDataset(data, tokenizer)) is {got}, expected {expected}: "
                             "one item per entry.").format(got=len(student), expected=len(entries)))
    for i, entry in enumerate(entries):
        what = f"InstructionDataset(data, tokenizer)[{i}]"
        got = _as_ids(call_checked(what, student.__getitem__, i), what)
        if got == reference[i]:
            continue
        if callable(own_format):
            try:
                prompt = own_format(dict(entry))
                if isinstance(prompt, str) and got == tokenizer.encode(prompt + RESPONSE_HEADER + entry["output"]):
                    continue
            except Exception:
                pass
        prompt = format_input(entry)
        text = tokenizer.decode(got) if all(3 <= v < 203 for v in got) else None
        if got in (tokenizer.encode(prompt + entry["output"]), tokenizer.encode(prompt + "\n" + entry["output"])):
            raise GradingError(_hinted(what, "header_missing"))
        if got == tokenizer.encode(prompt) or got == tokenizer.encode(prompt + RESPONSE_HEADER):
            raise GradingError(_hinted(what, "output_missing"))
        detail = text_difference(text, prompt + RESPONSE_HEADER + entry["output"]) if text is not None else ""
        # TRANSLATORS: {where} is "at character 12: yours '...', expected '...'" (or empty).
        raise GradingError(_("{what} differs from the encoded prompt + response {where}.").format(
            what=what, where=detail))
    names = _("with mask_prompt=True the items are not (prompt_length, ids): keep the given lines, and name the "
              "prompt text `prompt` and the token ids `ids` as they expect.")
    try:
        masked = call_checked("InstructionDataset(data, tokenizer, mask_prompt=True)", cls, entries, tokenizer,
                              mask_prompt=True)
    except GradingError as exc:
        if isinstance(exc.__cause__, NameError):
            raise GradingError(f"{exc} {names}") from exc
        if isinstance(exc.__cause__, TypeError) and "mask_prompt" in str(exc.__cause__):
            return  # the book's class has no mask_prompt option; exercise 4 grades the masking itself
        raise
    for i, entry in enumerate(entries):
        got = call_checked(f"InstructionDataset(..., mask_prompt=True)[{i}]", masked.__getitem__, i)
        ids = _as_ids(student[i], _("the ids"))  # already checked above
        prompts = [format_input(entry)]
        if callable(own_format):
            try:
                prompts.append(own_format(dict(entry)))
            except Exception:
                pass
        wanted = [(_prompt_length(tokenizer, p + RESPONSE_HEADER, ids), ids) for p in prompts if isinstance(p, str)]
        if not (isinstance(got, tuple) and len(got) == 2 and (got[0], _as_ids(got[1], _("the ids"))) in wanted):
            raise GradingError(names)


# --------------------------------------------------------------------------- batches


def _batch(seed, sizes):
    g = seeded(seed)
    return [torch.randint(0, 1000, (n,), generator=g).tolist() for n in sizes]


def _collate_variants(batch, pad, ignore, allowed):
    """Inputs and targets of known-wrong collate functions, as lists."""
    longest = max(len(item) for item in batch)

    def build(extra_end=True, mask="after_first", shift=True, cut=True):
        inputs, targets = [], []
        width = longest + 1 if extra_end else longest
        kept_one = False  # for "batch_first": the first pad of the whole batch
        for item in batch:
            padded = item + [pad] * (width - len(item))
            x = padded[:-1]
            y = padded[1:] if shift else padded[:-1]
            n = len(item)
            if mask == "after_first":
                y = y[:n] + [ignore] * (len(y) - n)
            elif mask == "all":
                y = y[: n - 1] + [ignore] * (len(y) - n + 1)
            elif mask == "last_row_length":  # the mask applied after the loop, with the last item's n
                y = y[:len(batch[-1])] + [ignore] * (len(y) - len(batch[-1]))
            elif mask == "batch_first":
                first = n - 1 if not kept_one else len(y)
                kept_one = True
                y = y[: first + 1] + [ignore] * (len(y) - first - 1) if first < len(y) else y[: n - 1] + [ignore] * (
                    len(y) - n + 1)
            if cut and allowed is not None:
                x, y = x[:allowed], y[:allowed]
            inputs.append(x)
            targets.append(y)
        return inputs, targets

    return {
        "no_mask": (build(mask="none"), HINTS["no_mask"]),
        "mask_all": (build(mask="all"), HINTS["mask_all"]),
        "no_cut": (build(cut=False), HINTS["no_cut"]),
        "no_shift": (build(shift=False), HINTS["no_shift"]),
        "no_end_token": (build(extra_end=False), HINTS["no_end_token"]),
        "one_end_token_per_batch": (build(mask="batch_first"), HINTS["one_end_token_per_batch"]),
        "one_length_for_all_rows": (build(mask="last_row_length"), HINTS["one_length_for_all_rows"]),
    }


def _first_list_difference(got, expected) -> str:
    """Where two lists of rows first differ: the row, the position and both values (or the row lengths)."""
    if len(got) != len(expected):
        return _("in the number of rows: {got}, expected {expected}").format(got=len(got), expected=len(expected))
    for r, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            if len(a) != len(b):
                # TRANSLATORS: {row} is a row number; {got_row} and {expected_row} are the two rows of ids.
                return _("first in row {row}: it has {got} ids, expected {expected} ({got_row} vs {expected_row})"
                         ).format(row=r, got=len(a), expected=len(b), got_row=a, expected_row=b)
            i = next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)
            return _("first at row {row}, position {position}: got {got}, expected {expected} (row {got_row}, "
                     "expected {expected_row})").format(row=r, position=i, got=a[i], expected=b[i], got_row=a,
                                                        expected_row=b)
    return _("nowhere")


def _to_lists(out, what):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise GradingError(_("{what} should return (inputs, targets), got {got}.").format(
            what=what, got=_describe(out)))
    inputs, targets = out
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise GradingError(_("{what} should return two tensors, got {inputs_type} and "
                             "{targets_type}; stack the rows with torch.stack.").format(
            what=what, inputs_type=type_name(inputs), targets_type=type_name(targets)))
    if inputs.dtype != torch.long or targets.dtype != torch.long:
        raise GradingError(_("{what} returns {inputs_dtype} / {targets_dtype}; token ids must be torch.long.").format(
            what=what, inputs_dtype=inputs.dtype, targets_dtype=targets.dtype))
    if inputs.device.type != "cpu" or targets.device.type != "cpu":
        raise GradingError(_("{what} with device='cpu' returns tensors on {device}; move them to device.").format(
            what=what, device=inputs.device))
    return inputs.tolist(), targets.tolist()


def _changes_kernel_items(fn, batch, kwargs) -> bool:
    """Whether ``fn`` changes the items of a batch that stays in the student's kernel.

    A batch sent as data arrives as a fresh copy, so a change to it never shows here: this second
    call hands the function a list-like ``collections.UserList`` built in the kernel and reads its
    items back. Only a change counts; a function that cannot take a UserList is not blamed.
    """
    if not is_remote(fn):
        return False
    from .lora import kernel_session

    session = kernel_session()
    if session is None:
        return False
    try:
        kept = session.build("collections", "UserList", [list(item) for item in batch])
        fn(kept, device="cpu", **kwargs)
        return [list(item) for item in kept] != batch
    except Exception:  # noqa: BLE001 - judged on the plain list above
        return False


def check_custom_collate_fn(fn):
    """The book's padding, end token, -100 masking and truncation; the items themselves unchanged."""
    from llmkit_solutions.instruction import custom_collate_fn

    assert_defined_in_notebook(fn)
    cases = [
        ([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]], {}),
        (_batch(61, (6, 2, 9, 4)), {}),
        (_batch(62, (3, 7, 5)), dict(pad_token_id=0, ignore_index=-1)),
        (_batch(63, (8, 3, 11, 6)), dict(allowed_max_length=7)),
        (_batch(64, (5, 5)), dict(allowed_max_length=3, pad_token_id=7, ignore_index=-5)),
    ]
    for batch, kwargs in cases:
        batch = [[v if v != kwargs.get("pad_token_id", PAD) else v + 1 for v in item] for item in batch]
        args = "".join(f", {k}={v}" for k, v in kwargs.items())
        what = f"custom_collate_fn({_describe(batch, 60)}{args})"
        before = [list(item) for item in batch]
        got = _to_lists(call_checked(what, fn, batch, device="cpu", **kwargs), what)
        if batch != before or _changes_kernel_items(fn, before, kwargs):
            raise GradingError(_hinted(what, "items_changed"))
        expected = _to_lists(custom_collate_fn(before, **kwargs), _("the reference"))
        if got == expected:
            continue
        pad, ignore = kwargs.get("pad_token_id", PAD), kwargs.get("ignore_index", -100)
        if any(ignore in row for row in got[0]):
            raise GradingError(_hinted(what, "inputs_masked"))
        for name, (variant, hint) in _collate_variants(before, pad, ignore, kwargs.get("allowed_max_length")).items():
            if list(variant) == list(got) and list(variant) != list(expected):
                raise GradingError(with_hint(_("{what} differs from the reference.").format(what=what), hint))
        # TRANSLATORS: {where} says where the rows first differ ("first at row 1, position 3: ...").
        for part, template in ((0, N_("{what}: the inputs differ {where}.")),
                               (1, N_("{what}: the targets differ {where}."))):
            if got[part] != expected[part]:
                raise GradingError(_(template).format(
                    what=what, where=_first_list_difference(got[part], expected[part])))


def check_mask_prompt_targets(fn):
    """The first prompt_length - 1 targets of each row become ignore_index; the first response token stays."""
    from llmkit_solutions.instruction import mask_prompt_targets

    assert_defined_in_notebook(fn)
    g = seeded(71)
    cases = [
        (torch.randint(0, 500, (3, 10), generator=g), [4, 1, 7], {}),
        (torch.randint(0, 500, (2, 6), generator=g), [9, 3], dict(ignore_index=-1)),
    ]
    cases[0][0][1, 8:] = -100  # padding already masked: it must stay masked
    for targets, lengths, kwargs in cases:
        what = f"mask_prompt_targets(targets, {lengths}" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
        original = targets.clone()
        out = call_checked(what, fn, targets.clone(), list(lengths), **kwargs)
        if out is None:
            raise GradingError(_("{what} returned None; return the masked targets (a tensor).").format(what=what))
        if not isinstance(out, torch.Tensor):
            raise GradingError(_("{what} returned {type_name}; return a tensor shaped like targets.").format(
                what=what, type_name=type_name(out)))
        expected = mask_prompt_targets(original, lengths, **kwargs)
        if out.shape == expected.shape and torch.equal(out, expected):
            continue
        ignore = kwargs.get("ignore_index", -100)

        def masked(keep_back, value):
            v = original.clone()
            for row, n in enumerate(lengths):
                v[row, : max(n - keep_back, 0)] = value
            return v

        variants = {HINTS["mask_first_response"]: masked(0, ignore), HINTS["mask_one_short"]: masked(2, ignore)}
        if ignore != -100:
            variants[HINTS["fixed_ignore"]] = masked(1, -100)
        for hint, variant in variants.items():
            if out.shape == variant.shape and torch.equal(out, variant):
                raise GradingError(with_hint(_("{what} differs from the reference.").format(what=what), hint))
        raise GradingError(_("{what} gives {got}, expected {expected}: set the first "
                             "prompt_length - 1 targets of each row to ignore_index and keep the rest.").format(
            what=what, got=out.tolist(), expected=expected.tolist()))


# --------------------------------------------------------------------------- splitting and scoring


def check_split_instructions(fn):
    """(train, test, validation) = 85 / 10 / rest, int-rounded, in file order."""
    assert_defined_in_notebook(fn)
    for n, fractions in ((53, ()), (47, ()), (40, (0.5, 0.3))):
        data = [{"instruction": f"task {i}", "input": "", "output": str(i)} for i in range(n)]
        train_frac, test_frac = fractions or (0.85, 0.1)
        # TRANSLATORS: the call being checked; {count} is how many entries the data holds, {fractions} the
        # fractions passed (", 0.5, 0.3") or nothing.
        what = _("split_instructions(data of {count}{fractions})").format(
            count=n, fractions=f", {train_frac}, {test_frac}" if fractions else "")
        parts = call_checked(what, fn, list(data), *fractions)
        if not isinstance(parts, (list, tuple)) or len(parts) != 3:
            raise GradingError(_("{what} should return three lists (train, test, validation), got {got}.").format(
                what=what, got=_describe(parts)))
        train, test, val = (list(p) for p in parts)
        n_train, n_test = int(n * train_frac), int(n * test_frac)
        expected = (data[:n_train], data[n_train:n_train + n_test], data[n_train + n_test:])
        if (train, test, val) == expected:
            continue
        sizes, want = (len(train), len(test), len(val)), tuple(len(p) for p in expected)
        if sizes == (want[0], want[2], want[1]) and sizes != want:
            raise GradingError(with_hint(_("{what} gives sizes {sizes}, expected {expected}.").format(
                what=what, sizes=sizes, expected=want), HINTS["split_order"]))
        if sizes != want:
            if sizes[0] == round(n * train_frac) or sizes[1] == round(n * test_frac):
                raise GradingError(_("{what} gives sizes {sizes}, expected {expected}: {hint}").format(
                    what=what, sizes=sizes, expected=want, hint=_(HINTS["split_rounding"])))
            raise GradingError(_("{what} gives sizes {sizes}, expected {expected} (int(n * train_frac), "
                                 "int(n * test_frac), the rest).").format(what=what, sizes=sizes, expected=want))
        raise GradingError(_hinted(what, "split_shuffled"))


def check_score_responses(fn):
    """{'n', 'exact_match', 'normalised_match'} as fractions: stripped equality and normalised equality."""
    from llmkit_solutions.instruction import score_responses

    assert_defined_in_notebook(fn)
    entries = [{"instruction": "i", "input": "", "output": out} for out in
               ("Paris", "foxes", "The ball was found.", "42", "apple, fig", "Blue", "ten")]
    cases = [
        ["Paris", " foxes\n", "the ball was found", "41", "Apple fig", "blue.", "ten"],
        ["Paris", "foxes", "The ball was found.", "42", "apple, fig", "Blue", "ten"],
        ["", "no", "The ball was found!", "42 ", "apple fig", "BLUE", "Ten."],
    ]
    for responses in cases:
        what = f"score_responses(entries, {_describe(responses, 70)})"
        got = call_checked(what, fn, [dict(e) for e in entries], list(responses))
        expected = score_responses(entries, responses)
        if not isinstance(got, dict):
            raise GradingError(_("{what} returned {type_name}; return a dict with the keys n, exact_match "
                                 "and normalised_match.").format(what=what, type_name=type_name(got)))
        missing = [k for k in expected if k not in got]
        if missing:
            raise GradingError(_("{what} lacks the key(s) {keys}; return n, exact_match and "
                                 "normalised_match.").format(what=what, keys=", ".join(missing)))
        for key in ("n", "exact_match", "normalised_match"):
            value, want = got[key], expected[key]
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise GradingError(_("{what}[{key!r}] is {got}; it should be a number.").format(
                    what=what, key=key, got=_describe(got[key]))) from None
            if abs(value - want) < 1e-9:
                continue
            if abs(value - 100 * want) < 1e-6 and key != "n":
                raise GradingError(_("{what}[{key!r}] is {value}: {hint}").format(
                    what=what, key=key, value=value, hint=_(HINTS["percentage"])))
            if key == "exact_match":
                unstripped = sum(e["output"] == r for e, r in zip(entries, responses)) / len(entries)
                if abs(value - unstripped) < 1e-9:
                    raise GradingError(_("{what}['exact_match'] is {value:.4f}, expected {expected:.4f}: {hint}")
                                       .format(what=what, value=value, expected=want, hint=_(HINTS["not_stripped"])))
            if key == "normalised_match":
                raise GradingError(_("{what}['normalised_match'] is {value:.4f}, expected {expected:.4f}: {hint}")
                                   .format(what=what, value=value, expected=want, hint=_(HINTS["not_normalised"])))
            raise GradingError(_("{what}[{key!r}] is {value}, expected {expected}.").format(
                what=what, key=key, value=value, expected=want))
