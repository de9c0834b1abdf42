"""Commands beyond GPT: ``compare``, ``mlm``, ``rag`` and ``prompt`` (``llmkit.beyond``), added to ``llmkit``'s parser.

    llmkit compare models gpt lstm ssm [--params N] [--seconds S] [--out DIR]
    llmkit compare finetune [--model minilm] [--tasks spam,reviews] [--strategies ...] [--out DIR]
    llmkit mlm pretrain --run-dir DIR [--resume] [--set key=value ...]
    llmkit rag index DIR [--out INDEX] [--embedder minilm|BERT_FOLDER|MLM_RUN]
    llmkit rag train-reader [--out INDEX] [--steps N]
    llmkit rag ask "question" [--out INDEX] [-k 3] [--no-retrieval]
    llmkit rag eval [--out INDEX]
    llmkit prompt eval --checkpoint RUN/checkpoint.pt [--instruct RUN/instruct/full.pt] [--shots 3]

Each writes its markdown table (and plot) into its output folder and prints where.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .errors import LLMKitError


def _apply_sets(config, items) -> None:
    """``--set key=value`` on a dataclass config, the value read as TOML (3, 0.1, "x", [..])."""
    from .registry import closest
    from .runconfig import parse_value

    names = [f.name for f in dataclasses.fields(config)]
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or key.strip() not in names:
            hint = closest(key.strip(), names)
            raise LLMKitError(f"--set takes key=value with a key of {type(config).__name__}"
                              + (f" (did you mean '{hint}'?)" if hint else "") + f"; keys: {', '.join(names)}.")
        setattr(config, key.strip(), parse_value(raw.strip()))


def _write(out: Path, name: str, text: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(text, encoding="utf-8")
    print(f"report: {out / name}")


def cmd_compare_models(args) -> None:
    from .beyond.compare import CompareConfig, compare_models

    c = CompareConfig(models=args.models, params=args.params, seconds=args.seconds, corpus=args.corpus,
                      threads=args.threads)
    _apply_sets(c, args.set)
    compare_models(c, args.out)
    print(f"report: {args.out / 'models.md'} (plot {args.out / 'models.png'})")


def cmd_compare_finetune(args) -> None:
    from .beyond.recipe import RecipeConfig, report, run_recipe

    c = RecipeConfig(model=args.model, tasks=args.tasks.split(","), strategies=args.strategies.split(","))
    _apply_sets(c, args.set)
    _write(args.out, "finetune.md", report(run_recipe(c), args.model))


def pretrain_mlm_from_run_arguments(args) -> None:
    """``llmkit pretrain --objective mlm``: the run flags that mean something for an encoder, then MLM pretraining."""
    from .beyond.mlm import MLMConfig, pretrain_mlm

    if args.config or args.init_from:
        flag = "--config" if args.config else "--from"
        raise LLMKitError(f"{flag} is not available with --objective mlm; set the encoder's options with --set "
                          "key=value (keys: llmkit mlm pretrain --help) and start from scratch.")
    if args.model not in (None, "bert"):
        raise LLMKitError(f"--objective mlm trains the bert encoder, not '{args.model}'; drop --model or use --model bert.")
    unused = [f"--{flag}" for flag in ("sampler", "attention", "device", "precision") if getattr(args, flag, None)]
    if unused:
        raise LLMKitError(f"{', '.join(unused)} has no effect with --objective mlm; drop it.")
    c = MLMConfig()
    for flag in ("corpus", "tokenizer", "epochs", "max_steps"):
        if getattr(args, flag, None) is not None:
            setattr(c, flag, getattr(args, flag))
    _apply_sets(c, args.set)
    run_dir = args.run_dir or Path("runs/mlm")
    pretrain_mlm(c, run_dir, resume=args.resume, overwrite=args.overwrite)
    print(f"report: {run_dir / 'report.md'}")


def cmd_mlm_pretrain(args) -> None:
    from .beyond.mlm import MLMConfig, pretrain_mlm

    c = MLMConfig()
    _apply_sets(c, args.set)
    pretrain_mlm(c, args.run_dir, resume=args.resume, overwrite=args.overwrite)
    print(f"report: {args.run_dir / 'report.md'}")


def cmd_rag_index(args) -> None:
    from .beyond.rag import build_index

    meta = build_index(args.folder, args.out, args.embedder)
    print(f"indexed {meta['passages']} passages ({meta['dim']}-d, {meta['embedder']}) into {args.out / 'index.faiss'}")


def cmd_rag_train_reader(args) -> None:
    from .beyond.reader import ReaderConfig, train_reader

    c = ReaderConfig(steps=args.steps)
    _apply_sets(c, args.set)
    print(f"reader: {train_reader(c, args.out)}")


def cmd_rag_ask(args) -> None:
    from .beyond.rag import Retriever, prompt
    from .beyond.reader import Reader

    passages = None if args.no_retrieval else Retriever(args.out).search([args.question], args.k)[0]
    for p in passages or []:
        print(f"[{p['score']:.3f}] {p['source']}: {p['text'][:100]}...")
    reader_dir = args.out / "reader"
    if not (reader_dir / "checkpoint.pt").is_file():
        print("--- prompt (no reader trained: llmkit rag train-reader --out " + str(args.out) + ") ---")
        print(prompt(args.question, passages[: args.answer_k] if passages else None))
        return
    print("answer:", Reader(reader_dir).answer(args.question, passages[: args.answer_k] if passages else None))


def cmd_rag_eval(args) -> None:
    from .beyond.reader import evaluate, report

    _write(args.out, "rag.md", report(evaluate(args.out, args.out / "reader", answer_k=args.answer_k)))


def cmd_prompt_eval(args) -> None:
    from .beyond.prompting import evaluate_prompts, report

    rows = evaluate_prompts(args.checkpoint, args.instruct, k=args.shots, max_eval=args.max_eval)
    _write(args.out, "prompting.md", report(rows))


def add_parsers(sub) -> None:
    """Add the commands to ``llmkit``'s subparsers (``llmkit.cli.build_parser``)."""
    path = Path
    sets = dict(action="append", metavar="KEY=VALUE", help="override one setting of the command's config")

    compare = sub.add_parser("compare", help="side-by-side reports: sequence models, fine-tuning strategies")
    csub = compare.add_subparsers(dest="compare_command", required=True)
    p = csub.add_parser("models", help="validation loss of models at equal parameters and equal wall time")
    p.add_argument("models", nargs="+", help="model names (llmkit plugins --family models), e.g. gpt lstm ssm")
    p.add_argument("--params", type=int, default=300_000, help="target parameter count of each model")
    p.add_argument("--seconds", type=float, default=60.0, help="training wall time of each model")
    p.add_argument("--corpus", default="builtin")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", type=path, default=path("runs/compare"))
    p.add_argument("--set", **sets)
    p.set_defaults(func=cmd_compare_models)
    p = csub.add_parser("finetune", help="a pretrained encoder: feature extraction, full, adapter, LoRA")
    p.add_argument("--model", default="minilm", help='"minilm" (all-MiniLM-L6-v2), a BERT folder, or "tiny"')
    p.add_argument("--tasks", default="spam,reviews")
    p.add_argument("--strategies", default="feature-extraction,full,adapter,lora")
    p.add_argument("--out", type=path, default=path("runs/compare"))
    p.add_argument("--set", **sets)
    p.set_defaults(func=cmd_compare_finetune)

    mlm = sub.add_parser("mlm", help="masked-language-model pretraining of the bert encoder")
    msub = mlm.add_subparsers(dest="mlm_command", required=True)
    p = msub.add_parser("pretrain", help="MLM pretraining through the kit's trainer, into a run folder")
    p.add_argument("--run-dir", type=path, default=path("runs/mlm"))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--set", **sets)
    p.set_defaults(func=cmd_mlm_pretrain)

    rag = sub.add_parser("rag", help="retrieval-augmented generation over a folder of documents")
    rsub = rag.add_subparsers(dest="rag_command", required=True)
    p = rsub.add_parser("index", help="chunk and embed a folder into a FAISS index")
    p.add_argument("folder", type=path)
    p.add_argument("--out", type=path, default=path("runs/rag"))
    p.add_argument("--embedder", default="minilm", help='"minilm", a BERT folder, or an llmkit mlm run folder')
    p.set_defaults(func=cmd_rag_index)
    p = rsub.add_parser("train-reader", help="train the small GPT that answers from a passage")
    p.add_argument("--out", type=path, default=path("runs/rag"))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--set", **sets)
    p.set_defaults(func=cmd_rag_train_reader)
    p = rsub.add_parser("ask", help="retrieve the top-k passages and answer from the prompt template")
    p.add_argument("question")
    p.add_argument("--out", type=path, default=path("runs/rag"))
    p.add_argument("-k", type=int, default=3, help="passages to retrieve (and show)")
    p.add_argument("--answer-k", type=int, default=1, help="passages put in the reader's prompt")
    p.add_argument("--no-retrieval", action="store_true", help="closed book: the question alone")
    p.set_defaults(func=cmd_rag_ask)
    p = rsub.add_parser("eval", help="recall@k and exact match with and without retrieval on the shipped questions")
    p.add_argument("--out", type=path, default=path("runs/rag"))
    p.add_argument("--answer-k", type=int, default=1)
    p.set_defaults(func=cmd_rag_eval)

    prompt = sub.add_parser("prompt", help="zero- and few-shot prompting beside instruction tuning")
    psub = prompt.add_subparsers(dest="prompt_command", required=True)
    p = psub.add_parser("eval", help="score prompt templates on the instruction set's test split")
    p.add_argument("--checkpoint", required=True, help="a pretrained checkpoint.pt (llmkit run)")
    p.add_argument("--instruct", help="an instruction-tuned checkpoint (RUN/instruct/<strategy>.pt)")
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--max-eval", type=int, default=0, help="> 0: score the first N test entries only")
    p.add_argument("--out", type=path, default=path("runs/compare"))
    p.set_defaults(func=cmd_prompt_eval)

