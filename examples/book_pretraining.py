"""The book's chapter-5 pretraining run, with the reference solutions, on any ~20 KB text.

    python examples/book_pretraining.py                 # 20 KB of the kit's short story (builtin-story)
    python examples/book_pretraining.py --text my.txt   # your text
    python examples/book_pretraining.py --text builtin  # 20 KB of the mixed corpus: memorised more slowly

GPT_CONFIG_124M with context_length 256, AdamW(lr=4e-4, weight_decay=0.1), batch 2, 10 epochs,
a 90/10 split by characters, seed 123 -- the book's recipe. Expect an initial loss near
ln(50257) = 10.82-11 and a final training loss below 1 (the model memorises the short text).
"""

import argparse
import time

import torch

from llmkit.data import load_corpus
from llmkit.gpt2_bpe import gpt2_encoding
from llmkit_solutions.data_sampling import create_dataloader_v1
from llmkit_solutions.gpt import GPT_CONFIG_124M, GPTModel
from llmkit_solutions.pretraining import calc_loss_loader, train_model_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", help="a UTF-8 text file or a builtin corpus name (default: builtin-story)")
    parser.add_argument("--chars", type=int, default=20_480)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    text = load_corpus(args.text or "builtin-story").text[: args.chars]
    split = int(0.9 * len(text))
    cfg = {**GPT_CONFIG_124M, "context_length": 256}
    torch.manual_seed(123)
    train_loader = create_dataloader_v1(text[:split], batch_size=2, max_length=256, stride=256, drop_last=True,
                                        shuffle=True)
    val_loader = create_dataloader_v1(text[split:], batch_size=2, max_length=256, stride=256, drop_last=False,
                                      shuffle=False)
    torch.manual_seed(123)
    model = GPTModel(cfg)
    with torch.no_grad():
        print(f"initial train loss {calc_loss_loader(train_loader, model, 'cpu'):.3f}, "
              f"val loss {calc_loss_loader(val_loader, model, 'cpu'):.3f}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    start = time.perf_counter()
    train_losses, val_losses, tokens = train_model_simple(
        model, train_loader, val_loader, optimizer, "cpu", num_epochs=args.epochs, eval_freq=5, eval_iter=5,
        start_context="Every effort moves you", tokenizer=gpt2_encoding())
    print(f"final train loss {train_losses[-1]:.3f}, val loss {val_losses[-1]:.3f}, "
          f"{tokens[-1]:,} tokens in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
