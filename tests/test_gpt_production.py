"""The production GPT (plugins/llmkit_gpt) against the book's GPTModel, GPT-2 and itself compiled.

Every comparison transplants or seeds the same weights into both models, so a difference can only
come from how a piece is computed (fused kernels sum in another order: fp32 tolerance 1e-5).
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

import llmkit
from llmkit.errors import LLMKitError
from llmkit.testing.models import BaseModelTests
from llmkit_gpt import GPT, configure_optimizer, generate, linear_cross_entropy, pad_prompts, quantize_for_decoding
from llmkit_solutions.gpt import GPTModel
from llmkit_solutions.gpt import generate as book_generate

CFG = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.1, qkv_bias=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


IGNORE = -100


def pair(seed=0, **overrides):
    """The book's GPTModel and ours from the same seed: the same weights, in eval mode."""
    cfg = {**CFG, **overrides}
    torch.manual_seed(seed)
    book = GPTModel(cfg).eval()
    torch.manual_seed(seed)
    return book, GPT(cfg).eval()


def ids(batch=2, tokens=16, seed=1, vocab=97):
    return torch.randint(0, vocab, (batch, tokens), generator=torch.Generator().manual_seed(seed))


class TestConformance(BaseModelTests):
    """The kit's model suite: shapes, causality, dropout, seeds, cache, book weights, registry."""

    registered_name = "gpt"
    atol = 2e-5

    @pytest.fixture
    def model_factory(self):
        return GPT


class TestConformanceTied(BaseModelTests):
    """The same suite with the head tied to the token embedding (its weights are no longer the book's)."""

    book_compatible = False
    atol = 2e-5

    @pytest.fixture
    def model_factory(self):
        return lambda cfg: GPT({**cfg, "tie_weights": True})


class TestConformanceBF16(BaseModelTests):
    """The suite with every forward under bf16 autocast; logits within bf16's rounding of the reference's."""

    atol = 0.05
    precision = "bf16"

    @pytest.fixture
    def model_factory(self):
        return GPT


@pytest.mark.slow
class TestConformanceCompiled(BaseModelTests):
    """The suite with every forward through torch.compile (fp32: the reference's logits to 2e-5)."""

    atol = 2e-5
    compiled = True

    @pytest.fixture
    def model_factory(self):
        return GPT


# --------------------------------------------------------------------------- the book's model, exactly


def test_state_dict_keys_shapes_and_seeded_values_are_the_books():
    book, ours = pair()
    theirs, mine = book.state_dict(), ours.state_dict()
    assert list(theirs) == list(mine)
    for key in theirs:
        assert theirs[key].shape == mine[key].shape and torch.equal(theirs[key], mine[key]), key
    assert ours.context_length == CFG["context_length"]


def test_a_book_state_dict_loads_strictly_and_gives_its_logits():
    book, _ = pair(seed=3)
    _, ours = pair(seed=4)
    ours.load_state_dict(book.state_dict(), strict=True)
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), book(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_logits_equal_the_references_in_fp32(qkv_bias):
    book, ours = pair(qkv_bias=qkv_bias)
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), book(x), atol=1e-5, rtol=0)


def test_logits_under_bf16_autocast_stay_close_to_the_references():
    book, ours = pair()
    x = ids()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = ours(x).float(), book(x).float()
    assert (got - want).abs().max().item() < 0.1 * want.abs().max().item()
    assert (got.argmax(-1) == want.argmax(-1)).float().mean() > 0.9


def test_book_modules_are_interchangeable_lora_wraps_the_projections():
    from llmkit_solutions.lora import replace_linear_with_lora

    book, ours = pair()
    ours.load_state_dict(book.state_dict())
    replace_linear_with_lora(ours, rank=2, alpha=2)  # W_query etc. become LinearWithLoRA: no fused QKV
    replace_linear_with_lora(book, rank=2, alpha=2)
    x = ids()
    with torch.no_grad():
        assert ours(x).shape == (2, 16, 97)  # B is zero: LoRA adds nothing yet
        torch.testing.assert_close(ours(x), book(x), atol=1e-5, rtol=0)


def test_another_attention_by_name_is_one_line_pointing_at_the_books_model():
    with pytest.raises(LLMKitError, match="gpt-book") as err:
        GPT({**CFG, "attention": "gqa"})
    assert "\n" not in str(err.value)
    GPT({**CFG, "attention": "sdpa"})  # the same maths: accepted


def test_registered_as_the_kits_gpt():
    model = llmkit.create("models", "gpt", CFG)
    assert isinstance(model, GPT)


# --------------------------------------------------------------------------- the loss path


@pytest.mark.parametrize("chunk", [5, 16, 1000])
def test_loss_and_gradients_equal_cross_entropy_of_the_full_logits(chunk):
    book, ours = pair(drop_rate=0.0, loss_chunk_rows=chunk)
    book.train(), ours.train()
    x, y = ids(), ids(seed=2)
    y[0, :5] = -100  # ignored targets, as the book's instruction collate writes them
    want = F.cross_entropy(book(x).flatten(0, 1), y.flatten(), ignore_index=-100)
    got = ours(x, targets=y)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    want.backward()
    got.backward()
    for (name, p), q in zip(book.named_parameters(), ours.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_linear_cross_entropy_scales_with_the_incoming_gradient_and_skips_unneeded_grads():
    x = torch.randn(10, 8, requires_grad=True)
    w = torch.randn(13, 8)  # no grad wanted for the weight
    t = torch.randint(0, 13, (10,))
    (3.0 * linear_cross_entropy(x, w, t, chunk_rows=4)).backward()
    x2 = x.detach().clone().requires_grad_()
    (3.0 * F.cross_entropy(x2 @ w.t(), t)).backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-5, rtol=1e-5)
    assert w.grad is None


@pytest.mark.parametrize("vocab", [41, 64, 129])  # padded to 64 inside, already 64, padded to 192
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linear_cross_entropy_in_chunks_and_softmax_blocks_equals_the_plain_loss(dtype, vocab):
    torch.manual_seed(0)
    x = (3 * torch.randn(70, 12)).to(dtype).requires_grad_()
    w = torch.randn(vocab, 12, requires_grad=True)  # the stored fp32 weight, as under autocast
    t = torch.randint(0, vocab, (70,))
    t[:3] = vocab - 1  # the last real id, next to the padding
    t[::9] = IGNORE  # some padded targets
    got = linear_cross_entropy(x, w, t, chunk_rows=64, softmax_rows=16)  # 70 rows: 64 + 6, blocks of 16
    got.backward()
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    want = F.cross_entropy((x2 @ w2.to(dtype).t()).float(), t, ignore_index=IGNORE)
    want.backward()
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(got, want, **tol)
    torch.testing.assert_close(x.grad.float(), x2.grad.float(), **tol)
    assert w.grad.dtype == torch.float32
    torch.testing.assert_close(w.grad, w2.grad, **tol)


def test_loss_with_every_target_ignored_is_zero_not_nan():
    _, ours = pair()
    loss = ours(ids(), targets=torch.full((2, 16), -100))
    assert loss.item() == 0.0


def test_loss_under_bf16_autocast_is_close_to_fp32():
    _, ours = pair(drop_rate=0.0)
    x, y = ids(), ids(seed=2)
    fp32 = ours(x, targets=y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = ours(x, targets=y)
    assert bf16.dtype == torch.float32 and abs(bf16.item() - fp32.item()) < 0.05


@pytest.mark.parametrize("tied", [False, True])
def test_gradients_under_bf16_autocast_match_the_plain_loss_under_autocast(tied):
    # The plain loss under autocast is what nanoGPT and the book's loop compute in bf16; the chunked
    # loss must give the same gradients to bf16 rounding, and keep the weights' gradients fp32.
    grads = []
    for fused in (False, True):
        _, ours = pair(drop_rate=0.0, tie_weights=tied)
        x, y = ids(), ids(seed=2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = ours(x, targets=y) if fused else F.cross_entropy(ours(x).flatten(0, 1).float(), y.flatten())
        loss.backward()
        grads.append({n: p.grad for n, p in ours.named_parameters()})
    for name, want in grads[0].items():
        got = grads[1][name]
        assert got.dtype == torch.float32, name
        scale = want.abs().max().item() or 1.0
        assert (got - want).abs().max().item() <= 0.05 * scale, name


def test_a_replaced_head_falls_back_to_the_plain_loss():
    _, ours = pair(drop_rate=0.0)
    ours.out_head = torch.nn.Linear(32, 2)  # classification fine-tuning: a new head with a bias
    x, y = ids(), torch.randint(0, 2, (2, 16))
    torch.testing.assert_close(ours(x, targets=y), F.cross_entropy(ours(x).flatten(0, 1), y.flatten()))


# --------------------------------------------------------------------------- tied head, optimizer


def test_tied_head_is_one_tensor_with_both_book_names():
    torch.manual_seed(0)
    model = GPT({**CFG, "tie_weights": True})
    assert model.out_head.weight is model.tok_emb.weight
    assert {"tok_emb.weight", "out_head.weight"} <= set(model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in GPT(CFG).parameters()) - CFG["vocab_size"] * CFG["emb_dim"]


def test_a_tied_model_refuses_an_untied_state_dict_in_one_line():
    book, _ = pair()
    tied = GPT({**CFG, "tie_weights": True})
    with pytest.raises(LLMKitError, match="tie_weights") as err:
        tied.load_state_dict(book.state_dict())
    assert "\n" not in str(err.value)


def test_configure_optimizer_decays_matrices_only_and_uses_the_fused_kernel():
    torch.manual_seed(0)
    model = GPT({**CFG, "tie_weights": True})
    opt = configure_optimizer(model, lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["fused"] is True
    model(ids(), targets=ids(seed=2)).backward()
    opt.step()


# --------------------------------------------------------------------------- torch.compile


def test_no_graph_breaks_in_training_or_inference():
    _, ours = pair(drop_rate=0.0)
    x, y = ids(), ids(seed=2)
    for kwargs in ({"targets": y}, {}):
        explanation = torch._dynamo.explain(ours)(x, **kwargs)
        assert explanation.graph_break_count == 0, explanation.break_reasons
        assert explanation.graph_count == 1


@pytest.mark.slow
def test_compiled_fullgraph_gives_the_eager_loss_and_gradients():
    _, ours = pair(drop_rate=0.0)
    ours.train()
    x, y = ids(), ids(seed=2)
    compiled = torch.compile(ours, fullgraph=True, dynamic=False)
    loss = compiled(x, targets=y)
    loss.backward()
    grads = [p.grad.clone() for p in ours.parameters()]
    ours.zero_grad()
    eager = ours(x, targets=y)
    eager.backward()
    torch.testing.assert_close(loss, eager, atol=1e-5, rtol=0)
    for g, p in zip(grads, ours.parameters()):
        torch.testing.assert_close(g, p.grad, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- GPT-2 checkpoints


def test_hugging_face_gpt2_loads_with_its_logits_and_greedy_ids(tmp_path):
    transformers = pytest.importorskip("transformers")
    from llmkit_solutions.loading import load_hf_gpt2

    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
                                     bos_token_id=99, eos_token_id=99)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.uniform_(0.5, 1.5) if ".ln_" in name and name.endswith("weight") else p.normal_(0.0, 0.2)
    hf.save_pretrained(tmp_path)
    cfg = dict(vocab_size=100, context_length=64, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=True)
    for tie in (False, True):
        model = load_hf_gpt2(GPT({**cfg, "tie_weights": tie}), tmp_path).eval()
        x = ids(vocab=100, tokens=12)
        with torch.no_grad():
            torch.testing.assert_close(model(x), hf(x).logits, atol=1e-4, rtol=0)
        with torch.no_grad():
            want = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=8, min_new_tokens=8,
                               do_sample=False, use_cache=True, pad_token_id=99)
        assert torch.equal(generate(model, x, 8), want)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("new_tokens", [1, 5, 30])  # 30 runs past the window: the cache is rebuilt
def test_greedy_ids_equal_the_books_generate(new_tokens):
    book, ours = pair()
    prompt = ids(batch=3, tokens=5)
    want = book_generate(book, prompt, new_tokens, CFG["context_length"], use_cache=False)
    assert torch.equal(generate(ours, prompt, new_tokens, CFG["context_length"]), want)


def test_sampled_ids_equal_the_books_with_the_same_seed():
    book, ours = pair()
    prompt = ids(batch=2, tokens=4)
    torch.manual_seed(7)
    want = book_generate(book, prompt, 10, 16, temperature=0.8, top_k=5, use_cache=True)
    torch.manual_seed(7)
    assert torch.equal(generate(ours, prompt, 10, 16, temperature=0.8, top_k=5), want)


def test_generation_stops_when_every_row_reaches_eos():
    book, ours = pair()
    prompt = ids(batch=1, tokens=4)
    first = book_generate(book, prompt, 1, 16)[0, -1].item()
    assert generate(ours, prompt, 10, eos_id=first).shape == (1, 4)


def test_prompts_of_different_lengths_in_one_batch_give_each_ones_own_ids():
    book, ours = pair()
    prompts = [ids(batch=1, tokens=n, seed=n)[0] for n in (2, 6, 4)]
    idx, lengths = pad_prompts(prompts, pad_id=0)
    out = generate(ours, idx, 7, prompt_lengths=lengths)
    for row, prompt in zip(out, prompts):
        alone = book_generate(book, prompt[None], 7, 16, use_cache=True)[0]
        assert torch.equal(row[idx.shape[1] - len(prompt):], alone)


def test_padded_prompts_that_would_overflow_the_context_are_one_line():
    _, ours = pair()
    idx, lengths = pad_prompts([[1, 2], [3, 4, 5]])
    with pytest.raises(LLMKitError, match="context") as err:
        generate(ours, idx, 20, prompt_lengths=lengths)
    assert "\n" not in str(err.value)


def test_bf16_and_int8_decoding_copies_generate_and_leave_the_model_alone():
    _, ours = pair()
    prompt = ids(batch=2, tokens=4)
    want = generate(ours, prompt, 6)
    for dtype in ("bf16", "int8", "int8-dynamic"):
        copy = quantize_for_decoding(ours, dtype)
        out = generate(copy, prompt, 6)
        assert out.shape == want.shape and torch.equal(out[:, :4], prompt)
    assert ours.out_head.weight.dtype == torch.float32
    assert torch.equal(generate(ours, prompt, 6), want)
    with pytest.raises(LLMKitError):
        quantize_for_decoding(ours, "fp8")


def test_the_books_generate_runs_the_production_model_with_its_own_cache():
    book, ours = pair()
    prompt = ids(batch=2, tokens=5)
    want = book_generate(book, prompt, 14, 16, use_cache=True)
    assert torch.equal(book_generate(ours, prompt, 14, 16, use_cache=True), want)


@pytest.mark.parametrize("guesses", [1, 8])
def test_prompt_lookup_gives_exactly_the_greedy_ids(guesses):
    new_tokens = 40  # runs past the window of 16 twice: guesses and rebuilds meet
    for seed in range(2):
        book, ours = pair(seed=seed)
        prompt = ids(batch=2, tokens=6, seed=seed)
        want = book_generate(book, prompt, new_tokens, 16, use_cache=True)
        assert torch.equal(generate(ours, prompt, new_tokens, lookup=guesses), want)


def test_prompt_lookup_stops_at_eos_like_the_book():
    book, ours = pair()
    prompt = ids(batch=1, tokens=6)
    eos = book_generate(book, prompt, 12, 16)[0, 10].item()
    want = book_generate(book, prompt, 30, 16, eos_id=eos)
    assert torch.equal(generate(ours, prompt, 30, eos_id=eos, lookup=4), want)


@pytest.mark.parametrize("kind", ["bf16", "int8", "int8-dynamic", "stranger"])
@pytest.mark.parametrize("guesses", [1, 4])
def test_a_draft_model_gives_exactly_the_greedy_ids(kind, guesses):
    new_tokens = 40  # past the window of 16 twice: guessing stops at the first crop, rebuilds follow
    for seed in range(2):
        book, ours = pair(seed=seed)
        # A copy of the weights guesses well; a model with other weights guesses badly: either way
        # the ids are the model's own.
        draft = pair(seed=seed + 10)[1].eval() if kind == "stranger" else quantize_for_decoding(ours, kind)
        for prompt in (ids(batch=2, tokens=6, seed=seed), ids(batch=1, tokens=20, seed=seed)):  # 20 > context
            want = book_generate(book, prompt, new_tokens, 16, use_cache=True)
            assert torch.equal(generate(ours, prompt, new_tokens, draft=draft, draft_tokens=guesses), want)


def test_a_draft_model_stops_at_eos_and_refuses_sampling():
    book, ours = pair()
    prompt = ids(batch=1, tokens=6)
    eos = book_generate(book, prompt, 12, 16)[0, 10].item()
    want = book_generate(book, prompt, 30, 16, eos_id=eos)
    draft = quantize_for_decoding(ours, "bf16")
    assert torch.equal(generate(ours, prompt, 30, eos_id=eos, draft=draft), want)
    other_vocab = pair(vocab_size=50)[1]
    for kwargs in (dict(temperature=0.7), dict(lookup=4), dict(draft=other_vocab)):
        with pytest.raises(LLMKitError) as err:
            generate(ours, prompt, 5, **{"draft": draft, **kwargs})
        assert "\n" not in str(err.value)


def test_the_speculative_decoder_drafts_with_dynamic_int8_on_a_cpu_that_has_an_engine():
    from llmkit_gpt.generate import _DRAFTS, draft_kind, dynamic_int8_engine, generate_speculative

    book, ours = pair()
    prompt = ids(batch=1, tokens=6)
    want = book_generate(book, prompt, 30, 16, use_cache=True)
    assert torch.equal(generate_speculative(ours, prompt, 30), want)
    expected = "int8-dynamic" if dynamic_int8_engine() else "bf16"
    assert draft_kind(ours) == expected
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in _DRAFTS[ours].modules()) \
        == (expected == "int8-dynamic")
    if os.environ.get("CI") == "true":
        assert dynamic_int8_engine() is not None, "torch's CPU wheel ships fbgemm/x86: the engine should be found"


def test_lookup_draft_follows_the_latest_repeat_of_the_last_ngram():
    from llmkit_gpt.generate import lookup_draft

    assert lookup_draft(torch.tensor([5, 1, 2, 3, 9, 1, 2, 3, 7, 8, 1, 2, 3]), 2) == [7, 8]
    assert lookup_draft(torch.tensor([4, 4]), 3) == [4]
    assert lookup_draft(torch.tensor([1, 2, 3]), 3) == []


def test_prompt_lookup_refuses_sampling_in_one_line():
    _, ours = pair()
    with pytest.raises(LLMKitError, match="greedy") as err:
        generate(ours, ids(batch=1, tokens=4), 5, temperature=0.7, lookup=4)
    assert "\n" not in str(err.value)
