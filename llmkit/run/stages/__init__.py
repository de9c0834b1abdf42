"""The stages of a run, one module each, read top to bottom: ``pretrain``, ``classify``, ``instruct``.

Each module has ``NAME``, ``check(cfg)`` (fails on bad settings or data before any training starts)
and ``run(...)``, which returns a ``StageResult``. Pretraining produces the model the others start
from; the orchestrator (``llmkit.run.run``) calls them in order.
"""
