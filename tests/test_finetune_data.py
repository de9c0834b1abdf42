"""The kit's fine-tuning data path (llmkit.finetune_data) gives the book's splits, datasets and batches."""

import torch

from llmkit.data import load_instruction_json, load_sms_spam_collection
from llmkit.finetune_data import (InstructionTexts, SpamMessages, alpaca_prompt, balanced_split, classify,
                                  collate_instructions, score_responses, split_instructions)
from llmkit_solutions import classification as book_cls
from llmkit_solutions import instruction as book_ins
from llmkit_tokenizers import CharTokenizer

ROWS = load_sms_spam_collection()
ENTRIES = load_instruction_json()[:40]
TOKENIZER = CharTokenizer.from_text("".join(t for _, t in ROWS) + "".join(
    alpaca_prompt(e) + book_ins.RESPONSE_HEADER + e["output"] for e in ENTRIES))
PAD = TOKENIZER.eos_id


def test_balanced_split_is_the_books():
    book = book_cls.random_split(book_cls.create_balanced_dataset(ROWS, seed=7), 0.7, 0.1, seed=7)
    assert balanced_split(ROWS, seed=7) == book


def test_spam_messages_are_the_books_padded_ids():
    rows = ROWS[:30]
    ours, book = SpamMessages(rows, TOKENIZER, 40, PAD), book_cls.SpamDataset(rows, TOKENIZER, 40, PAD)
    assert len(ours) == len(book)
    for (x, y), (bx, by) in zip(ours, book):
        assert torch.equal(x, bx) and torch.equal(y, by)


def test_instruction_batches_are_the_books():
    assert split_instructions(ENTRIES) == book_ins.split_instructions(ENTRIES)
    assert alpaca_prompt(ENTRIES[0]) == book_ins.format_input(ENTRIES[0])
    ours = InstructionTexts(ENTRIES[:6], TOKENIZER)
    for mask in (True, False):
        book = book_ins.InstructionDataset(ENTRIES[:6], TOKENIZER, mask_prompt=mask)
        got = collate_instructions([ours[i] for i in range(6)], PAD, max_length=64, mask_prompt=mask)
        want = book_ins.custom_collate_fn([book[i] for i in range(6)], pad_token_id=PAD, allowed_max_length=64,
                                          mask_prompt=mask)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), mask


def test_classify_and_scores_are_the_books():
    torch.manual_seed(0)
    from llmkit_solutions.gpt import GPTModel

    model = GPTModel(dict(vocab_size=TOKENIZER.n_vocab, context_length=64, emb_dim=16, n_heads=2, n_layers=1,
                          drop_rate=0.0, qkv_bias=False))
    model.out_head = torch.nn.Linear(16, 2)
    for text, _ in ROWS[:10]:
        assert classify(text, model, TOKENIZER, "cpu", 48, PAD) == book_cls.classify_review(
            text, model, TOKENIZER, "cpu", max_length=48, pad_token_id=PAD)
    answers = [e["output"].upper() for e in ENTRIES[:5]]
    assert score_responses(ENTRIES[:5], answers) == book_ins.score_responses(ENTRIES[:5], answers)
