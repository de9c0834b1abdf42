"""Stage 8: spam data (reading, balancing, splitting), SpamDataset, and the classifier helpers."""

import zipfile

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from llmkit.errors import LLMKitError
from llmkit.gpt2_bpe import gpt2_encoding
from llmkit_solutions.classification import (
    SpamDataset,
    calc_accuracy_loader,
    calc_loss_batch,
    calc_loss_batch_classification,
    calc_loss_loader_classification,
    check_fits_context,
    classify_review,
    create_balanced_dataset,
    load_sms_spam_collection,
    prepare_for_classification,
    random_split,
    read_labeled_file,
    save_split_csv,
    shipped_messages_path,
)
from llmkit_solutions.gpt import GPTModel

TINY = dict(vocab_size=50257, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
ROWS = [("ham", "See you at 6?"), ("spam", "WIN a FREE prize now!!! Call 0800"), ("ham", "ok"),
        ("spam", "Claim your reward"), ("ham", "Running late, sorry")]


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_encoding()


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    model = GPTModel(TINY)
    return prepare_for_classification(model, num_classes=2).eval()


# --------------------------------------------------------------------------- reading files


def test_reads_uci_file_zip_and_headed_tsv(tmp_path):
    lines = "".join(f"{label}\t{text}\n" for label, text in ROWS)
    raw = tmp_path / "SMSSpamCollection"
    raw.write_text(lines, encoding="utf-8")
    archive = tmp_path / "sms+spam+collection.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme", "not data")
        z.writestr("SMSSpamCollection", lines)
    headed = tmp_path / "messages.tsv"
    headed.write_text("label\ttext\n" + lines, encoding="utf-8")
    for path in (raw, archive, headed):
        assert load_sms_spam_collection(path) == ROWS


def test_bad_label_names_the_label_and_line(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_text("ham\tfine\nspam\tbuy\nphish\tclick here\n", encoding="utf-8")
    with pytest.raises(LLMKitError, match=r"'phish' at line 3 of .*SMSSpamCollection"):
        load_sms_spam_collection(path)
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("Label,Text\n0,hello\n7,odd\n", encoding="utf-8")
    with pytest.raises(LLMKitError, match=r"'7' at line 3 of .*train.csv"):
        read_labeled_file(csv_path)
    with pytest.raises(LLMKitError, match="does not exist"):
        load_sms_spam_collection(tmp_path / "missing.tsv")


def test_csv_round_trip_keeps_commas_and_quotes(tmp_path):
    rows = [("spam", 'Say "hi", win £5, now'), ("ham", "line one, two")]
    path = save_split_csv(rows, tmp_path / "train.csv")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "Label,Text"
    assert read_labeled_file(path) == [(1, rows[0][1]), (0, rows[1][1])]


def test_shipped_messages_load_when_present():
    path = shipped_messages_path()
    if not path.exists():
        pytest.skip("messages.tsv is not shipped yet")
    rows = load_sms_spam_collection()
    assert len(rows) > 50
    assert {label for label, _ in rows} == {"ham", "spam"}
    assert all(text.strip() for _, text in rows)


# --------------------------------------------------------------------------- balancing and splitting


def test_balanced_dataset_and_book_split_sizes():
    rows = [("ham", f"ham message {i}") for i in range(4825)] + [("spam", f"spam message {i}") for i in range(747)]
    balanced = create_balanced_dataset(rows)
    assert len(balanced) == 1494
    assert [label for label, _ in balanced] == ["ham"] * 747 + ["spam"] * 747
    assert balanced[747:] == rows[4825:]  # every spam row, in order
    assert len(set(balanced[:747])) == 747  # sampled without replacement
    assert create_balanced_dataset(rows) == balanced  # seeded
    train, validation, test = random_split(balanced, 0.7, 0.1)
    assert (len(train), len(validation), len(test)) == (1045, 149, 300)
    assert sorted(train + validation + test) == sorted(balanced)
    assert random_split(balanced, 0.7, 0.1)[0] == train
    assert random_split(balanced, 0.7, 0.1, seed=1)[0] != train
    with pytest.raises(LLMKitError):
        random_split(balanced, 0.8, 0.3)


# --------------------------------------------------------------------------- SpamDataset


def test_spam_dataset_pads_to_the_longest_and_truncates(tokenizer, tmp_path):
    ds = SpamDataset(ROWS, tokenizer)
    longest = max(len(tokenizer.encode(t)) for _, t in ROWS)
    assert ds.max_length == longest and len(ds) == len(ROWS)
    ids, label = ds[2]  # "ok"
    assert ids.dtype == torch.long and ids.shape == (longest,)
    assert ids.tolist() == tokenizer.encode("ok") + [50256] * (longest - 1)
    assert label.item() == 0 and ds[1][1].item() == 1

    short = SpamDataset(ROWS, tokenizer, max_length=3, pad_token_id=0)
    assert short[1][0].tolist() == tokenizer.encode(ROWS[1][1])[:3]
    assert short[2][0].tolist() == tokenizer.encode("ok") + [0, 0]

    path = save_split_csv(ROWS, tmp_path / "validation.csv")
    from_file = SpamDataset(path, tokenizer, max_length=ds.max_length)
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(ds, from_file))
    with pytest.raises(LLMKitError, match="'maybe'"):
        SpamDataset([("ham", "a"), ("maybe", "b")], tokenizer)


def test_sequences_longer_than_the_context_are_refused(tokenizer):
    long_text = "word " * 40
    ds = SpamDataset([("ham", long_text)], tokenizer)
    with pytest.raises(LLMKitError, match="context_length 16.*max_length=16"):
        check_fits_context(ds.max_length, TINY["context_length"])
    check_fits_context(SpamDataset([("ham", long_text)], tokenizer, max_length=16).max_length, 16)
    with pytest.raises(LLMKitError, match="context_length"):
        classify_review(long_text, tiny_classifier(), tokenizer, "cpu", max_length=40)


# --------------------------------------------------------------------------- model helpers


def test_prepare_for_classification_is_the_book_recipe():
    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel(TINY), num_classes=3)
    assert model.out_head.weight.shape == (3, 16) and model.out_head.bias is not None
    trainable = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("trf") else "")
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"trf_blocks.1", "final_norm", "out_head"}
    two = prepare_for_classification(GPTModel(TINY), trainable_blocks=2)
    assert all(p.requires_grad for p in two.trf_blocks.parameters())
    assert not two.tok_emb.weight.requires_grad
    with pytest.raises(LLMKitError, match="trainable_blocks"):
        prepare_for_classification(GPTModel(TINY), trainable_blocks=3)
    with pytest.raises(LLMKitError, match="Module lacks out_head, trf_blocks, final_norm"):
        prepare_for_classification(nn.Module())


class LastTokenParity(nn.Module):
    """Stub classifier: predicts class (last id % 2) at every position, with a known margin."""

    def forward(self, in_idx):
        logits = torch.zeros(*in_idx.shape, 2)
        logits[..., 1] = torch.where(in_idx % 2 == 1, 2.0, -2.0)
        return logits  # (B, T, 2)


def test_loss_and_accuracy_read_the_last_token():
    inputs = torch.tensor([[4, 1], [4, 3], [9, 2], [0, 8], [5, 7], [2, 6]])
    labels = torch.tensor([1, 1, 0, 0, 0, 1])  # the last two are wrong
    loader = DataLoader(list(zip(inputs, labels)), batch_size=2)
    model = LastTokenParity()
    assert calc_accuracy_loader(loader, model, "cpu") == pytest.approx(4 / 6)
    assert calc_accuracy_loader(loader, model, "cpu", num_batches=2) == 1.0
    right = nn.functional.cross_entropy(torch.tensor([[0.0, 2.0]]), torch.tensor([1])).item()
    loss = calc_loss_batch_classification(inputs[:2], labels[:2], model, "cpu")
    assert loss.item() == pytest.approx(right)
    assert calc_loss_batch is calc_loss_batch_classification
    assert calc_loss_loader_classification(loader, model, "cpu", num_batches=1) == pytest.approx(right)
    assert calc_loss_loader_classification(loader, model, "cpu") > right
    empty = DataLoader([], batch_size=2)
    assert calc_loss_loader_classification(empty, model, "cpu") != calc_loss_loader_classification(empty, model, "cpu")


def test_classify_review_returns_one_of_the_two_labels(tokenizer):
    model = tiny_classifier()
    for text in ("You are a winner! Claim now", "see you later"):
        assert classify_review(text, model, tokenizer, "cpu", max_length=12) in ("spam", "not spam")
        assert classify_review(text, model, tokenizer, "cpu") in ("spam", "not spam")
    assert classify_review("x", LastTokenParity(), tokenizer, "cpu") == "spam"  # id of "x" is 87, odd
