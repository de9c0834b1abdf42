"""Hidden-test checks for stage 2: input/target pairs, the book's dataset and loader, the random sampler.

Each ``check_*`` runs the student's code on seeded token streams whose ids tell their own positions,
compares with the reference, and names the known mistake (targets not shifted by one, wrong stride,
off-by-one window count, shuffle not seeded, ...). Helpers the student wrote in earlier exercises are
swapped for the reference while a later exercise is checked, so one mistake costs points once.
"""

from __future__ import annotations

import contextlib
import inspect

import torch

from llmkit.i18n.runtime import N_, _

from . import GradingError, assert_defined_in_notebook, call_checked, with_hint
from .remote import getitems, is_remote

BOOK_TEXT = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
BOOK_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114, 286, 617,
            34680, 27271, 13]
BOOK_LOADER_DEFAULTS = {"batch_size": 4, "max_length": 256, "stride": 128, "shuffle": True, "drop_last": True,
                        "num_workers": 0}

HINTS = {
    "not_shifted": N_("targets not shifted by one: the targets are the inputs moved one token later, "
                      "token_ids[start + 1 : start + max_length + 1]."),
    "shift_two": N_("the targets are shifted by two tokens; shift them by exactly one."),
    "shift_back": N_("the targets are shifted the wrong way; they are the tokens one position later, not earlier."),
    "window_long": N_("the inputs or targets hold max_length + 1 ids; each holds exactly max_length ids."),
    "window_short": N_("the inputs or targets hold max_length - 1 ids; each holds exactly max_length ids."),
    "stride_one": N_("wrong stride: the windows start one token apart; successive windows start `stride` tokens "
                     "apart, range(0, len(token_ids) - max_length, stride)."),
    "stride_length": N_("wrong stride: the windows start max_length tokens apart; step by `stride`, "
                        "range(0, len(token_ids) - max_length, stride)."),
    "count_short": N_("off-by-one window count: the last window is missing; the starts run over "
                      "range(0, len(token_ids) - max_length, stride)."),
    "count_long": N_("off-by-one window count: one window too many, whose target runs past the end; the last window "
                     "needs max_length + 1 tokens, so the starts stop before len(token_ids) - max_length."),
    "not_seeded": N_("shuffle not seeded: draw the offsets with the sampler's own generator, created once in __init__ "
                     "with torch.Generator().manual_seed(seed), e.g. torch.randint(..., generator=self.generator)."),
    "allowed_special": N_("the tokenizer refuses <|endoftext|> in the text; allow it when encoding: "
                          "tokenizer.encode(txt, allowed_special={'<|endoftext|>'})."),
    "items_not_tensors": N_("the items are not tensors of ids (torch.long), so the DataLoader cannot stack them into "
                            "(batch, max_length) batches; wrap the windows in torch.tensor(...)."),
    "loader_shuffles": N_("the loader shuffles the windows although shuffle=False; pass shuffle on to the DataLoader "
                          "(shuffle=shuffle)."),
    "loader_no_shuffle": N_("the loader never shuffles; pass shuffle on to the DataLoader (shuffle=shuffle)."),
    "drop_last_forced": N_("the last, smaller batch is dropped although drop_last=False; pass drop_last on to the "
                           "DataLoader (drop_last=drop_last)."),
    "drop_last_ignored": N_("the last, smaller batch is kept although drop_last=True; pass drop_last on to the "
                            "DataLoader (drop_last=drop_last)."),
    "batch_size_ignored": N_("the batches do not hold batch_size windows; pass batch_size on to the DataLoader "
                             "(batch_size=batch_size)."),
    "stride_not_passed": N_("the windows start max_length tokens apart whatever the stride; pass stride on to "
                            "GPTDatasetV1(txt, tokenizer, max_length, stride)."),
    "reseeded_each_batch": N_("every get_batch() call draws the same batch; create the generator once in __init__ and "
                              "let it run on, instead of seeding a new one for each batch."),
    "seed_ignored": N_("samplers with different seeds draw the same batches; seed the generator with the seed "
                       "argument: torch.Generator().manual_seed(seed)."),
    "last_start_never_drawn": N_("the last window is never drawn: draw starts from [0, len(data) - block_size), "
                                 "torch.randint(len(data) - block_size, ...)."),
    "start_past_end": N_("the offsets run one too far; a window needs block_size + 1 tokens (its targets reach one "
                         "further), so draw starts below len(data) - block_size."),
}


class IdTokenizer:
    """A stand-in tokenizer for text of written ids ('5 17 3'); accepts tiktoken-style keywords."""

    def encode(self, text, **kwargs):
        return [int(t) for t in text.split()]


@contextlib.contextmanager
def _with_reference(obj, **replacements):
    """Let the notebook's names point to reference helpers while ``obj`` is checked (restored afterwards).

    A student object in the kernel: the names are rebound there, each helper lent as a callback (its code never
    leaves the grader). An object in this process (the unit tests): its module globals are swapped.
    """
    if is_remote(obj):
        from .trusted import current_session

        session = current_session.get()
        if session is None:
            raise GradingError(_("this check needs the grading session of the student's kernel"))
        with session.bound(**replacements):
            yield
        return
    func = obj.__init__ if inspect.isclass(obj) else obj
    namespace = getattr(func, "__globals__", None)
    saved = {}
    if namespace is not None:
        for name, value in replacements.items():
            if name in namespace:
                saved[name] = namespace[name]
                namespace[name] = value
    try:
        yield
    finally:
        if namespace is not None:
            namespace.update(saved)


def _reference_input_target_pair(token_ids, start, max_length):
    """The reference helper, lent to the kernel as a function (slices of data, nothing else)."""
    from llmkit_solutions.data_sampling import input_target_pair

    return input_target_pair(token_ids, start, max_length)


class _ReferenceDatasets:
    """The reference GPTDatasetV1, lent as a function while create_dataloader_v1 is checked.

    It returns the reference's (input, target) windows as a plain list, which a DataLoader takes like any
    map-style dataset: in the student's kernel the list arrives as data, so batching asks the grader nothing.
    A lent object cannot ask the kernel anything while the kernel waits for it, so the windows of a tokenizer
    that lives in the kernel come from the grader's own GPT-2 BPE; the tokenizers the student's loader
    passed are recorded and checked afterwards (``check_tokenizers``) to encode like GPT-2.
    """

    def __init__(self):
        self.tokenizers = []

    def __call__(self, txt, tokenizer, max_length, stride):
        from llmkit.gpt2_bpe import gpt2_encoding
        from llmkit_solutions.data_sampling import GPTDatasetV1

        self.tokenizers.append(tokenizer)
        dataset = GPTDatasetV1(txt, gpt2_encoding() if is_remote(tokenizer) else tokenizer, max_length, stride)
        return [dataset[i] for i in range(len(dataset))]

    def check_tokenizers(self, what: str) -> None:
        for tokenizer in self.tokenizers:
            try:
                ids = [int(i) for i in tokenizer.encode(BOOK_TEXT, allowed_special={"<|endoftext|>"})]
            except Exception:  # noqa: BLE001 - no encode, another signature, not ids: not GPT-2's BPE
                ids = None
            if ids != BOOK_IDS:
                # TRANSLATORS: {what} is a function name, create_dataloader_v1.
                raise GradingError(_("{what} builds GPTDatasetV1 with a tokenizer that does not give GPT-2's ids; "
                                     "tokenize with GPT-2's BPE, llmkit.gpt2_bpe.gpt2_encoding().").format(what=what))


def _gpt2_tokenizer_for(obj):
    """GPT-2's BPE where ``obj`` runs: built in the student's kernel for a kernel object (their code may need a real
    tiktoken Encoding, not a stand-in), else the grader's own."""
    from llmkit.gpt2_bpe import gpt2_encoding

    if is_remote(obj):
        from .trusted import current_session

        session = current_session.get()
        if session is None:
            raise GradingError(_("this check needs the grading session of the student's kernel"))
        return session.build("llmkit.gpt2_bpe", "gpt2_encoding")
    return gpt2_encoding()


def _as_list(what: str, value) -> list[int]:
    try:
        return torch.as_tensor(value).tolist()
    except (TypeError, ValueError, RuntimeError) as exc:
        # TRANSLATORS: {what} names a value, e.g. input_ids or dataset[3][0]; {type_name} is a Python type.
        raise GradingError(_("{what} should be a list or tensor of ids, got {type_name}.").format(
            what=what, type_name=type(value).__name__)) from exc


def _pair_variants(ids, start: int, length: int) -> list[tuple[tuple[list, list], str]]:
    """(inputs, targets) that known mistakes produce, each with its hint's key."""
    x, y = ids[start:start + length], ids[start + 1:start + length + 1]
    return [
        ((x, ids[start:start + length]), "not_shifted"),
        ((x, ids[start + 2:start + length + 2]), "shift_two"),
        ((x, ids[start - 1:start + length - 1]), "shift_back"),  # at start 0 the slice [-1:...] is empty
        ((ids[start:start + length + 1], ids[start + 1:start + length + 2]), "window_long"),
        ((ids[start:start + length + 1], y), "window_long"),
        ((x, ids[start + 1:start + length + 2]), "window_long"),
        ((ids[start:start + length - 1], ids[start + 1:start + length]), "window_short"),
        ((x, ids[start + 1:start + length]), "window_short"),
    ]


def check_input_target_pair(fn):
    from llmkit_solutions.data_sampling import input_target_pair

    assert_defined_in_notebook(fn)
    generator = torch.Generator().manual_seed(21)
    stream = torch.randperm(500, generator=generator)[:60]
    for ids in (stream.tolist(), stream):
        for start, length in ((0, 4), (7, 5), (30, 8), (51, 8)):
            got = call_checked(f"input_target_pair(token_ids, {start}, {length})", fn, ids, start, length)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise GradingError(_("input_target_pair should return two sequences: (input_ids, target_ids)."))
            got = (_as_list("input_ids", got[0]), _as_list("target_ids", got[1]))
            plain = stream.tolist()
            expected = tuple(_as_list("reference", part) for part in input_target_pair(plain, start, length))
            if got == expected:
                continue
            for variant, name in _pair_variants(plain, start, length):
                if got == variant:
                    raise GradingError(with_hint(_("input_target_pair(token_ids, {start}, {length}) is wrong.")
                                                 .format(start=start, length=length), HINTS[name]))
            # TRANSLATORS: {difference} says where, e.g. "target_ids[2] is 7, expected 9".
            raise GradingError(_("input_target_pair(token_ids, {start}, {length}) is wrong: {difference}.").format(
                start=start, length=length, difference=_first_pair_difference(got, expected)))


def _first_pair_difference(got: tuple, expected: tuple) -> str:
    """Where (inputs, targets) first differ from the expected pair: which list, which index, which values."""
    for what, g, e in (("input_ids", got[0], expected[0]), ("target_ids", got[1], expected[1])):
        at = next((i for i, (a, b) in enumerate(zip(g, e)) if a != b), None)
        if at is not None:
            # TRANSLATORS: {what} is input_ids or target_ids; {at} an index; {got} and {expected} are ids.
            return _("{what}[{at}] is {got}, expected {expected}").format(what=what, at=at, got=g[at], expected=e[at])
        if len(g) != len(e):
            return _("{what} holds {got} ids, expected {expected}").format(what=what, got=len(g), expected=len(e))
    return _("the pair differs from the expected one")


def _windows(ids, length, stride, shift=1, stop=None):
    stop = len(ids) - length if stop is None else stop
    return [(ids[s:s + length], ids[s + shift:s + length + shift]) for s in range(0, stop, stride)]


def _dataset_variants(ids, length, stride) -> dict[str, list]:
    n = len(ids)
    return {
        "not_shifted": _windows(ids, length, stride, shift=0),
        "shift_two": _windows(ids, length, stride, shift=2, stop=n - length - 1),
        "stride_one": _windows(ids, length, 1),
        "stride_length": _windows(ids, length, length),
        "count_short": _windows(ids, length, stride, stop=n - length - 1),
        "count_long": _windows(ids, length, stride, stop=n - length + 1),
    }


def _items(what: str, dataset) -> list:
    try:
        n = len(dataset)
    except Exception as exc:
        # TRANSLATORS: {what} is "the dataset"; {error_type} and {error} are Python's exception and its message.
        raise GradingError(_("len({what}) raised {error_type}: {error}; define __len__.").format(
            what=what, error_type=type(exc).__name__, error=exc)) from exc
    try:  # every item in one request when the dataset lives in the student's kernel
        fetched = getitems(dataset, range(n))
    except Exception:  # noqa: BLE001 - fetched one by one below, to name the item that raised
        fetched = None
    items = []
    for i in range(n):
        item = fetched[i] if fetched is not None else call_checked(f"{what}[{i}]", dataset.__getitem__, i)
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise GradingError(_("{what}[{index}] should be a pair (input_ids, target_ids).").format(what=what,
                                                                                                   index=i))
        items.append((_as_list(f"{what}[{i}][0]", item[0]), _as_list(f"{what}[{i}][1]", item[1])))
    return items


def check_gpt_dataset_v1(cls):
    from llmkit_solutions import data_sampling as ref

    assert_defined_in_notebook(cls)
    generator = torch.Generator().manual_seed(22)
    ids = torch.randperm(1000, generator=generator)[:41].tolist()
    text = " ".join(map(str, ids))
    with _with_reference(cls, input_target_pair=_reference_input_target_pair):
        for length, stride in ((4, 1), (5, 5), (6, 2), (3, 4), (8, 3)):
            what = f"GPTDatasetV1(txt, tokenizer, max_length={length}, stride={stride})"
            dataset = call_checked(what, cls, text, IdTokenizer(), length, stride)
            got = _items(_("the dataset"), dataset)
            expected = [(x.tolist(), y.tolist()) for x, y in ref.GPTDatasetV1(text, IdTokenizer(), length, stride)]
            if got == expected:
                continue
            for name, variant in _dataset_variants(ids, length, stride).items():
                if got == variant:
                    raise GradingError(with_hint(_("{what} is wrong.").format(what=what), HINTS[name]))
            if len(got) != len(expected):
                raise GradingError(_("{what} has {got} windows, expected {expected}: the starts run over "
                                     "range(0, len(token_ids) - max_length, stride).").format(
                    what=what, got=len(got), expected=len(expected)))
            bad = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
            # TRANSLATORS: {item} and {expected} are (inputs, targets) pairs of id lists.
            raise GradingError(_("{what}: item {index} is {item}, expected {expected}.").format(
                what=what, index=bad, item=got[bad], expected=expected[bad]))
        item = dataset[0]
        if not all(torch.is_tensor(t) and t.dtype == torch.long for t in item):
            # TRANSLATORS: {type_name} is a Python type such as list; the English adds a plural s to it.
            raise GradingError(with_hint(_("GPTDatasetV1's items are {type_name}s.").format(
                type_name=type(item[0]).__name__), HINTS["items_not_tensors"]))
        try:
            dataset = cls(BOOK_TEXT, _gpt2_tokenizer_for(cls), 4, 4)
        except ValueError as exc:
            if "special token" in str(exc):
                raise GradingError(with_hint(_("GPTDatasetV1 raised ValueError on a text with <|endoftext|>."),
                                             HINTS["allowed_special"])) from exc
            raise GradingError(_("GPTDatasetV1 with GPT-2's tokenizer raised ValueError: {error}").format(
                error=exc)) from exc
        except Exception as exc:
            raise GradingError(_("GPTDatasetV1 with GPT-2's tokenizer raised {error_type}: {error}").format(
                error_type=type(exc).__name__, error=exc)) from exc
        if _items(_("the dataset"), dataset)[2][0] != BOOK_IDS[8:12]:
            raise GradingError(_("GPTDatasetV1 with GPT-2's tokenizer does not give the book's ids; encode the text "
                                 "with the tokenizer it is given."))


def _batches(what: str, loader) -> list[tuple[list, list]]:
    try:
        return [(_as_list(what, x), _as_list(what, y)) for x, y in loader]
    except GradingError:
        raise
    except Exception as exc:
        # TRANSLATORS: {what} is a call such as create_dataloader_v1(txt, batch_size=2, ...).
        raise GradingError(_("iterating over {what} raised {error_type}: {error}").format(
            what=what, error_type=type(exc).__name__, error=exc)) from exc


def check_create_dataloader_v1(fn):
    from llmkit_solutions import data_sampling as ref

    assert_defined_in_notebook(fn)
    params = inspect.signature(fn).parameters
    wrong = {k: (params[k].default if k in params else "missing") for k, v in BOOK_LOADER_DEFAULTS.items()
             if k not in params or params[k].default != v}
    if wrong or next(iter(params), None) != "txt":
        # TRANSLATORS: {wrong} maps each differing parameter to the student's default ('missing' if absent).
        raise GradingError(_("create_dataloader_v1 should take (txt, batch_size=4, max_length=256, stride=128, "
                             "shuffle=True, drop_last=True, num_workers=0), the book's signature; differs at "
                             "{wrong}.").format(wrong=wrong))
    text = (BOOK_TEXT + " ") * 5
    datasets = _ReferenceDatasets()
    with _with_reference(fn, GPTDatasetV1=datasets, input_target_pair=_reference_input_target_pair):
        what = "create_dataloader_v1(txt, batch_size=2, max_length=4, stride=4, shuffle=False, drop_last=False)"
        try:
            loader = fn(text, batch_size=2, max_length=4, stride=4, shuffle=False, drop_last=False)
        except ValueError as exc:
            if "special token" in str(exc):
                raise GradingError(with_hint(_("create_dataloader_v1 raised ValueError on a text with "
                                               "<|endoftext|>."), HINTS["allowed_special"])) from exc
            raise GradingError(_("{what} raised ValueError: {error}").format(what=what, error=exc)) from exc
        except Exception as exc:
            raise GradingError(_("{what} raised {error_type}: {error}").format(
                what=what, error_type=type(exc).__name__, error=exc)) from exc
        got = _batches(what, loader)
        expected = _batches("reference", ref.create_dataloader_v1(text, batch_size=2, max_length=4, stride=4,
                                                                 shuffle=False, drop_last=False))
        if got != expected:
            book_windows = {tuple(row) for batch in expected for row in batch[0]}
            if got and not any(tuple(row) in book_windows for row in got[0][0]):
                raise GradingError(_("{what}: the first batch is {got}, expected the book's GPT-2 ids {expected}; "
                                     "tokenize with GPT-2's BPE, llmkit.gpt2_bpe.gpt2_encoding(), and pass "
                                     "max_length and stride on to GPTDatasetV1.").format(
                    what=what, got=got[0][0], expected=expected[0][0]))
            hint = _loader_mistake(got, expected, text)
            if hint:
                raise GradingError(with_hint(_("{what} is wrong.").format(what=what), hint))
            # TRANSLATORS: {difference} says where, e.g. "batch 1, inputs row 0 is [...], expected [...]".
            raise GradingError(_("{what} is wrong: {difference}.").format(
                what=what, difference=_first_batch_difference(got, expected)))
        datasets.check_tokenizers("create_dataloader_v1")
        for drop_last in (True, False):
            what = f"create_dataloader_v1(txt, batch_size=3, max_length=4, stride=4, drop_last={drop_last})"
            got = _batches(what, call_checked(what, fn, text, batch_size=3, max_length=4, stride=4, shuffle=False,
                                              drop_last=drop_last))
            expected = _batches("reference", ref.create_dataloader_v1(text, batch_size=3, max_length=4, stride=4,
                                                                     shuffle=False, drop_last=drop_last))
            if len(got) != len(expected):
                hint = HINTS["drop_last_ignored" if drop_last else "drop_last_forced"]
                raise GradingError(with_hint(_("{what} gives {got} batches, expected {expected}.").format(
                    what=what, got=len(got), expected=len(expected)), hint))
        what = "create_dataloader_v1(txt, batch_size=2, max_length=4, stride=2, shuffle=True, drop_last=False)"
        torch.manual_seed(7)
        got = _batches(what, call_checked(what, fn, text, batch_size=2, max_length=4, stride=2, shuffle=True,
                                          drop_last=False))
        unshuffled = _batches("reference", ref.create_dataloader_v1(text, batch_size=2, max_length=4, stride=2,
                                                                   shuffle=False, drop_last=False))
        if got == unshuffled:
            raise GradingError(with_hint(_("{what} gives the windows in order.").format(what=what),
                                         HINTS["loader_no_shuffle"]))
        if _windows_of(got) != _windows_of(unshuffled):
            no_stride = _batches("reference", ref.create_dataloader_v1(text, batch_size=2, max_length=4, stride=4,
                                                                      shuffle=False, drop_last=False))
            if _windows_of(got) == _windows_of(no_stride):
                raise GradingError(with_hint(_("{what} is wrong.").format(what=what), HINTS["stride_not_passed"]))
            window = next(w for w in _windows_of(got) + [None] if w not in _windows_of(unshuffled))
            raise GradingError(_("{what} does not yield every window of the text once: it gives the window "
                                 "{window}, which GPTDatasetV1(txt, tokenizer, 4, 2) does not hold; pass max_length "
                                 "and stride on to GPTDatasetV1.").format(
                what=what, window=list(window[0]) if window else None))


def _loader_mistake(got: list, expected: list, text: str) -> str | None:
    """The hint of the loader mistake whose batches match ``got`` (batch_size=2, stride=4, no shuffle, drop_last off)."""
    from llmkit_solutions import data_sampling as ref

    for name, changed in (("drop_last_forced", dict(drop_last=True)), ("batch_size_ignored", dict(batch_size=4))):
        args = dict(batch_size=2, max_length=4, stride=4, shuffle=False, drop_last=False) | changed
        if got == _batches("reference", ref.create_dataloader_v1(text, **args)):
            return HINTS[name]
    if _windows_of(got) == _windows_of(expected):
        same_sizes = [len(x) for x, _targets in got] == [len(x) for x, _targets in expected]
        return HINTS["loader_shuffles" if same_sizes else "batch_size_ignored"]
    return None


def _first_batch_difference(got: list, expected: list) -> str:
    """Where two lists of (inputs, targets) batches first differ: the batch, the tensor, the row, the values."""
    for b, ((gx, gy), (ex, ey)) in enumerate(zip(got, expected)):
        for what, g, e in ((N_("inputs"), gx, ex), (N_("targets"), gy, ey)):
            if g != e:
                if len(g) != len(e):
                    # TRANSLATORS: {what} is "inputs" or "targets" (translated too).
                    return _("batch {batch} holds {got} rows of {what}, expected {expected}").format(
                        batch=b, got=len(g), what=_(what), expected=len(e))
                row = next(i for i, (a, c) in enumerate(zip(g, e)) if a != c)
                # TRANSLATORS: {what} is "inputs" or "targets" (translated too); {got} and {expected} are id lists.
                return _("batch {batch}, {what} row {row} is {got}, expected {expected}").format(
                    batch=b, what=_(what), row=row, got=g[row], expected=e[row])
    return _("it gives {got} batches, expected {expected}").format(got=len(got), expected=len(expected))


def _windows_of(batches) -> list:
    return sorted((tuple(x), tuple(y)) for xs, ys in batches for x, y in zip(xs, ys))


def check_random_block_sampler(cls):
    assert_defined_in_notebook(cls)
    from llmkit_solutions import data_sampling as ref

    n, T, B = 300, 8, 4
    data = list(range(1000, 1000 + n))  # each id tells its own position
    with _with_reference(cls, input_target_pair=_reference_input_target_pair):
        make = lambda seed, ids=data, block=T, batch=B, num=3: call_checked(  # noqa: E731
            f"RandomBlockSampler(token_ids, block_size={block}, batch_size={batch}, num_batches={num}, seed={seed})",
            cls, ids, block, batch, num_batches=num, seed=seed)
        sampler = make(5)
        x, y = call_checked("RandomBlockSampler.get_batch", sampler.get_batch)
        if not (torch.is_tensor(x) and torch.is_tensor(y)):
            raise GradingError(_("get_batch should return two tensors (inputs, targets), each of shape "
                                 "(batch_size, block_size)."))
        if tuple(x.shape) != (B, T) or tuple(y.shape) != (B, T):
            raise GradingError(_("get_batch returned shapes {inputs_shape} and {targets_shape}, expected "
                                 "{want} each: batch_size windows of block_size ids.").format(
                inputs_shape=tuple(x.shape), targets_shape=tuple(y.shape), want=(B, T)))
        if x.dtype != torch.long or y.dtype != torch.long:
            raise GradingError(_("get_batch should return torch.long ids (embedding layers need integer indices)."))
        steps = torch.arange(T)
        for row_x, row_y in zip(x, y):
            start = int(row_x[0]) - 1000
            if not torch.equal(row_x, 1000 + start + steps):
                raise GradingError(_("each input row must be a contiguous window of the token stream."))
            if torch.equal(row_y, row_x):
                raise GradingError(with_hint(_("get_batch is wrong."), HINTS["not_shifted"]))
            if not torch.equal(row_y, row_x + 1):
                raise GradingError(_("get_batch's targets must be the inputs' window moved one token later."))

        # Seeding: the same seed gives the same batches, whatever the global RNG did in between.
        torch.manual_seed(0)
        sampler_a = make(11)
        torch.manual_seed(1)
        batches_a = [sampler_a.get_batch()[0] for _draw in range(3)]
        torch.manual_seed(2)
        torch.rand(5)
        sampler_b = make(11)
        torch.manual_seed(3)
        batches_b = [sampler_b.get_batch()[0] for _draw in range(3)]
        if not all(torch.equal(a, b) for a, b in zip(batches_a, batches_b)):
            raise GradingError(with_hint(_("Two samplers with the same seed drew different batches."),
                                         HINTS["not_seeded"]))
        if all(torch.equal(a, batches_a[0]) for a in batches_a[1:]):
            raise GradingError(with_hint(_("get_batch is wrong."), HINTS["reseeded_each_batch"]))
        if torch.equal(make(12).get_batch()[0], make(11).get_batch()[0]):
            raise GradingError(with_hint(_("RandomBlockSampler is wrong."), HINTS["seed_ignored"]))

        # Every valid start is drawn, none past the end: n_small tokens allow starts 0 .. n_small - T - 1.
        n_small = T + 3
        draws = 16  # 64 windows: every one of the 3 valid starts comes up (a start past the end too, if drawn)
        small = make(5, ids=data[:n_small], num=draws)
        get_batch = small.get_batch
        starts = set()
        for i in range(draws):
            try:
                xs, ys = get_batch()
            except Exception as exc:
                raise GradingError(with_hint(_("get_batch on {count} tokens with block_size={block_size} raised "
                                               "{error_type}: {error}.").format(
                    count=n_small, block_size=T, error_type=type(exc).__name__, error=exc),
                    HINTS["start_past_end"])) from exc
            if tuple(ys.shape) != (B, T) or tuple(xs.shape) != (B, T):
                raise GradingError(with_hint(_("get_batch returned a short window near the end of the data."),
                                             HINTS["start_past_end"]))
            starts.update(int(v) - 1000 for v in xs[:, 0])
        if max(starts) < n_small - T - 1:
            raise GradingError(with_hint(_("the window at start {start} of {count} tokens never came up in "
                                           "{draws} draws.").format(start=n_small - T - 1, count=n_small,
                                                                     draws=draws * B),
                                         HINTS["last_start_never_drawn"]))
        if min(starts) > 0:
            raise GradingError(_("the window at start 0 is never drawn; draw starts from "
                                 "[0, len(data) - block_size)."))
        if len(small) != draws or len(list(small)) != draws:
            raise GradingError(_("len(sampler) and iteration should give num_batches batches."))
