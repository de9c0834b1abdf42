"""Beyond GPT: the recipes and commands that use the encoder and recurrent plugins.

    recipe.py      llmkit compare finetune: frozen encoder + head, full, adapters, LoRA, side by side
    compare.py     llmkit compare models: validation loss at equal parameters and equal wall time
    mlm.py         llmkit mlm pretrain: masked-LM pretraining through the kit's trainer, into a run folder
    rag.py         llmkit rag index / ask / eval: a FAISS index of encoder embeddings, prompt, generation
    prompting.py   llmkit prompt eval: zero- and few-shot templates beside instruction fine-tuning

Components are reached by name through the registry (``bert``, ``lstm``, ``feature-extraction`` ...),
so each recipe runs on whichever model or strategy a plugin provides.
"""
