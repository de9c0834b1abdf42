"""A run config small enough for tests: seconds, not minutes."""

TINY_SETTINGS = [
    "model.emb_dim=32", "model.n_heads=2", "model.n_layers=2", "model.context_length=32", "model.drop_rate=0.1",
    "tokenizer.vocab_size=300", "sampler.batch_size=8", "sampler.batches_per_epoch=10", "train.lr=0.01",
    "train.epochs=2", "train.eval_every=4", "train.eval_batches=2", "train.checkpoint_every=4",
    "train.warmup_steps=3", "train.sample_tokens=8", "device.name=cpu", "run.threads=1",
    # Only pretraining: the fine-tuning stages have their own tests (test_finetune_cli.py).
    'run.stages=["pretrain"]',
]


def tiny_args(*extra):
    args = []
    for setting in (*TINY_SETTINGS, *extra):
        args += ["--set", setting]
    return args
