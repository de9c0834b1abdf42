"""Stage 6: the book's loop and the kit's trainer (schedule, decay groups, checkpoints, exact resume)."""

import json
import math

import pytest
import torch

from llmkit.checkpoint import load_checkpoint, load_model_state
from llmkit.errors import LLMKitError
from llmkit.training import TrainConfig, lr_factor, make_optimizer, train
from llmkit_solutions.data_sampling import random_block_loader, sliding_window_loader
from llmkit_solutions.gpt import GPTModel
from llmkit_solutions.pretraining import calc_loss_batch, calc_loss_loader, evaluate_model, train_model_simple

CFG = dict(vocab_size=50, context_length=16, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.1, qkv_bias=False)


class CharCodes:
    """Tokenizer for the tests: ids are character codes modulo 50."""

    def encode(self, text):
        return [ord(c) % 50 for c in text]

    def decode(self, ids):
        return "".join(chr(65 + i % 26) for i in ids)


def token_stream(n=2000, seed=0):
    # A learnable pattern (a repeating sequence) with a little noise.
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % 17
    noise = torch.randint(0, 50, (n,), generator=g)
    keep = torch.rand(n, generator=g) < 0.9
    return torch.where(keep, base, noise).tolist()


def test_calc_loss_batch_is_cross_entropy_over_all_positions():
    torch.manual_seed(0)
    model = GPTModel(CFG).eval()
    x = torch.randint(0, 50, (2, 8))
    y = torch.randint(0, 50, (2, 8))
    logits = model(x)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 50), y.reshape(-1))
    torch.testing.assert_close(calc_loss_batch(x, y, model, "cpu"), expected)
    assert math.isclose(calc_loss_batch(x, y, model, "cpu").item(), math.log(50), rel_tol=0.2)


def test_calc_loss_loader_limits_batches_and_handles_empty():
    torch.manual_seed(0)
    model = GPTModel(CFG).eval()
    loader = sliding_window_loader(token_stream(400), batch_size=2, max_length=16, shuffle=False)
    first = calc_loss_batch(*next(iter(loader)), model, "cpu").item()
    assert calc_loss_loader(loader, model, "cpu", num_batches=1) == pytest.approx(first)
    assert math.isnan(calc_loss_loader([], model, "cpu"))


def test_train_model_simple_lowers_the_loss_and_returns_the_books_triple(capsys):
    torch.manual_seed(123)
    model = GPTModel(CFG)
    ids = token_stream()
    train_loader = sliding_window_loader(ids[:1600], batch_size=4, max_length=16, seed=1)
    val_loader = sliding_window_loader(ids[1600:], batch_size=4, max_length=16, shuffle=False, drop_last=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    train_losses, val_losses, tokens = train_model_simple(model, train_loader, val_loader, optimizer, "cpu",
                                                          num_epochs=3, eval_freq=5, eval_iter=2,
                                                          start_context="abc", tokenizer=CharCodes())
    assert len(train_losses) == len(val_losses) == len(tokens) > 3
    assert val_losses[-1] < val_losses[0] - 1.0
    assert tokens == sorted(tokens) and tokens[0] == 4 * 16
    out = capsys.readouterr().out
    assert "Ep 1 (Step 000000): Train loss" in out
    train_loss, val_loss = evaluate_model(model, train_loader, val_loader, "cpu", 1)
    assert model.training, "evaluate_model must leave the model in training mode"


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    factors = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


def test_weight_decay_skips_biases_and_norm_parameters():
    model = GPTModel(CFG)
    decay, no_decay = make_optimizer(model, 1e-3, 0.1).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} == {n for n, p in model.named_parameters() if p.dim() < 2}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert any(names[id(p)] == "tok_emb.weight" for p in decay["params"])


class Killed(Exception):
    pass


def kill_at(step):
    def listener(record):
        if record["kind"] == "train" and record["step"] == step:
            raise Killed  # the process dies right after this step; nothing else gets written

    return listener


def _train(run_dir, resume_from=None, sampler="sliding", callbacks=()):
    torch.manual_seed(7)
    model = GPTModel(CFG)
    ids = token_stream()
    if sampler == "sliding":
        loader = sliding_window_loader(ids[:1600], batch_size=4, max_length=16, seed=3)
    else:
        loader = random_block_loader(ids[:1600], batch_size=4, max_length=16, num_batches=7, seed=3)
    evals = {"val": sliding_window_loader(ids[1600:], 4, 16, shuffle=False, drop_last=False)}
    cfg = TrainConfig(epochs=3, lr=3e-3, warmup_steps=3, eval_every=5, eval_batches=2, checkpoint_every=4,
                      sample_tokens=5)
    state = train(model, loader, evals, cfg, tokenizer=CharCodes(), run_dir=run_dir, resume_from=resume_from,
                  show_progress=False, callbacks=callbacks)
    return model, state


def _losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]


@pytest.mark.parametrize("sampler", ["sliding", "random-block"])
def test_resume_after_a_kill_reproduces_the_uninterrupted_losses_exactly(tmp_path, sampler):
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full_dir.mkdir(), cut_dir.mkdir()
    full_model, full_state = _train(full_dir, sampler=sampler)
    with pytest.raises(Killed):
        _train(cut_dir, sampler=sampler, callbacks=[kill_at(11)])
    payload = load_checkpoint(cut_dir / "checkpoint.pt")
    assert payload["state"]["step"] == 8  # mid-epoch: steps 9-11 are lost and trained again
    assert payload["state"]["batch_in_epoch"] > 0
    resumed_model, state = _train(cut_dir, resume_from=payload, sampler=sampler)
    assert state.step == full_state.step
    assert _losses(cut_dir) == _losses(full_dir)
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_from_another_config_is_one_line(tmp_path):
    _train(tmp_path)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    other = GPTModel({**CFG, "emb_dim": 16})
    with pytest.raises(LLMKitError, match="another model config.*tok_emb.weight is \\(50, 32\\)"):
        load_model_state(other, payload["model"])


def test_unreadable_checkpoints_are_one_line(tmp_path):
    with pytest.raises(LLMKitError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(LLMKitError, match="not a readable llmkit checkpoint"):
        load_checkpoint(broken)
