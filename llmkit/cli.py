"""The ``llmkit`` command line. Bad input prints one line (``error: ...``) and exits with status 2."""

from __future__ import annotations

import argparse
import sys

from .errors import LLMKitError


def cmd_plugins(args) -> None:
    from .plugins import components, provider_label
    from .registry import FAMILIES

    families = [args.family] if args.family else list(FAMILIES)
    for family in families:
        entries = components(family)
        print(f"{family} ({len(entries)})")
        if not entries:
            print("  (none registered)")
        for c in entries:
            doc = c.doc.replace("``", "")
            print(f"  {c.name:<20} {provider_label(c.provider):<30} {doc}")


def cmd_bench_generate(args) -> None:
    from .bench import bench_generate

    rows = bench_generate(args.config, args.prompt_tokens, args.new_tokens, args.attention, args.threads,
                          model=args.model)
    print(f"greedy generation, model {args.model}, GPT config {args.config}, prompt {args.prompt_tokens} tokens, "
          f"{args.new_tokens} new tokens, {__import__('torch').get_num_threads()} threads")
    print(f"{'path':<10} {'seconds':>8} {'tokens/s':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['path']:<10} {r['seconds']:>8.2f} {r['tokens_per_s']:>9.1f} {r['ratio']:>5.2f}x")
    print("identical tokens:", "yes" if rows[0]["identical_tokens"] else "NO")


def _run_config(args):
    from .runconfig import load_run_config

    overrides = list(args.set or [])
    shortcuts = {"corpus": "data.corpus", "tokenizer": "tokenizer.name", "sampler": "sampler.name",
                 "model": "model.name", "attention": "model.attention", "device": "device.name",
                 "precision": "device.precision", "epochs": "train.epochs", "max_steps": "train.max_steps",
                 "spam": "finetune.spam_path", "instructions": "finetune.instructions_path"}
    for attr, key in shortcuts.items():
        value = getattr(args, attr, None)
        if value is not None:
            overrides.append(f"{key}={value}" if not isinstance(value, str) else f'{key}="{value}"')
    if args.resume and (args.config or overrides):
        from .errors import LLMKitError

        raise LLMKitError("--resume continues the run with the config saved in its folder; drop --config/--set "
                          "(or start a new run without --resume).")
    return load_run_config(args.config, overrides)


def cmd_run(args, stages=None) -> None:
    from .run import run

    cfg = _run_config(args)
    run_dir, results = run(cfg, args.run_dir, resume=args.resume, overwrite=args.overwrite, stages=stages,
                           init_from=getattr(args, "init_from", None))
    for result in results:
        s = result.summary
        if result.name == "pretrain":
            print(f"pretrain: val loss {s['initial_val_loss']:.3f} -> {s['final_val_loss']:.3f} "
                  f"(ln vocab {s['ln_vocab']:.2f}), {s['steps']} steps, {s['tokens_per_s']:,.0f} tokens/s, "
                  f"{s['seconds']:.1f} s")
            if "forgetting" in s:
                f = s["forgetting"]
                print(f"forgetting: loss on {f['old_corpus']} {f['before']:.3f} -> {f['after']:.3f}")
        else:
            print(f"{result.name}: " + ", ".join(f"{k} {v}" for k, v in s.items() if not isinstance(v, dict)))
    print(f"report: {run_dir / 'report.md'}")


def cmd_pretrain(args) -> None:
    if args.objective == "mlm":
        from .cli_extra import pretrain_mlm_from_run_arguments

        pretrain_mlm_from_run_arguments(args)
        return
    cmd_run(args, stages=["pretrain"])


def cmd_generate(args) -> None:
    from .run.commands import generate_text

    print(generate_text(args.checkpoint, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.seed,
                        args.device, args.decoder))


def cmd_finetune(args) -> None:
    from .run.commands import finetune_from

    cfg = _run_config(args)
    run_dir, result = finetune_from(cfg, args.init_from, args.strategy, args.task, args.run_dir, args.overwrite)
    s = result.summary
    if result.name == "classify":
        for r in s["strategies"].values():
            print(f"{r['strategy']}: test accuracy {r['test_accuracy']:.3f}, {r['trainable']:,} trainable parameters, "
                  f"{r['seconds']:.1f} s")
            print(f"checkpoint: {r['checkpoint']}")
    else:
        print(f"{s['strategy']}: exact match {s['exact_match_before']:.3f} -> {s['exact_match_after']:.3f}, "
              f"normalised match {s['normalised_match_before']:.3f} -> {s['normalised_match_after']:.3f}")
        print(f"checkpoint: {s['details']['checkpoint']}")
    print(f"report: {run_dir / 'report.md'}")


def cmd_classify(args) -> None:
    from .run.commands import classify_text

    print(classify_text(args.text, args.checkpoint, args.device))


def cmd_chat(args) -> None:
    from .run.commands import chat

    chat(args.checkpoint, device_name=args.device, max_new_tokens=args.max_new_tokens, decoder=args.decoder)


def cmd_bench_train(args) -> None:
    from .bench import bench_train, print_train_table

    rows = bench_train(args.config, args.attention.split(","), args.precision.split(","), args.steps,
                       args.batch_size, args.threads, model=args.model)
    print_train_table(rows, args)


def _add_run_arguments(p) -> None:
    p.add_argument("--config", help="a run.toml file")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set train.epochs=3 (repeatable)")
    p.add_argument("--run-dir", type=__import__("pathlib").Path, help="output folder (default runs/run-DATE-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir")
    for flag in ("corpus", "tokenizer", "sampler", "model", "attention", "device", "precision"):
        p.add_argument(f"--{flag}", help=f"shortcut for the {flag} setting (see llmkit plugins)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", dest="max_steps", type=int)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmkit", description="Build a GPT from scratch, one plugin at a time.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered components: family, name, provider, description")
    p.add_argument("--family", help="only this family (tokenizers, samplers, attention, models, ...)")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("run", help="the main job: pretrain (then fine-tune) and write a run folder with a report")
    _add_run_arguments(p)
    p.add_argument("--spam", help="spam data for the classify stage: SMSSpamCollection, its zip, or label<TAB>text")
    p.add_argument("--instructions", help="Alpaca-style JSON list for the instruct stage")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("pretrain", help="pretraining only; --from CHECKPOINT continues on a new corpus")
    _add_run_arguments(p)
    p.add_argument("--from", dest="init_from", help="start from this checkpoint (continual pretraining)")
    p.add_argument("--objective", choices=("next-token", "mlm"), default="next-token",
                   help="next-token (a GPT, the default) or mlm (masked language modelling of the bert encoder; "
                        "--set takes the keys of `llmkit mlm pretrain`)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a pretrained checkpoint (or GPT-2 folder) with one strategy")
    p.add_argument("--from", dest="init_from", required=True, metavar="CHECKPOINT",
                   help="a run's checkpoint.pt, or a GPT-2 folder (Hugging Face or OpenAI) / weights file")
    p.add_argument("--strategy", default="lora", help="finetune strategy (see llmkit plugins): lora, full, "
                   "classification, feature-extraction, adapter")
    p.add_argument("--task", default="classification", choices=["classification", "instruction"])
    p.add_argument("--config", help="a run.toml file (its [finetune] section)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set finetune.lora.rank=16 (repeatable)")
    p.add_argument("--run-dir", type=__import__("pathlib").Path, help="output folder (default runs/finetune-DATE-TIME)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir")
    p.add_argument("--device", help="shortcut for device.name")
    p.add_argument("--spam", help="spam data: SMSSpamCollection, its zip, or a label<TAB>text file")
    p.add_argument("--instructions", help="an Alpaca-style JSON list of instruction/input/output entries")
    p.set_defaults(func=cmd_finetune, resume=False)

    p = sub.add_parser("classify", help="spam or not spam, with a checkpoint fine-tuned for classification")
    p.add_argument("text")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("chat", help="answer instructions read from stdin (until EOF or 'exit')")
    p.add_argument("--checkpoint", required=True, help="a checkpoint fine-tuned for instructions")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--decoder", default=None, help="decoder (see llmkit plugins --family decoders); default kv-cache")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("generate", help="generate text from a run's checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--device", default="auto")
    p.add_argument("--decoder", default=None, help="decoder (see llmkit plugins --family decoders); default kv-cache")
    p.set_defaults(func=cmd_generate)

    _add_course_parser(sub)

    from .cli_extra import add_parsers  # compare, mlm, rag, prompt (llmkit.beyond)

    add_parsers(sub)

    bench = sub.add_parser("bench", help="print speed figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    g = bench_sub.add_parser("generate", help="tokens/s of generation with and without the KV cache")
    g.add_argument("--config", choices=["124M", "small"], default="124M")
    g.add_argument("--prompt-tokens", type=int, default=32)
    g.add_argument("--new-tokens", type=int, default=64)
    g.add_argument("--attention", default=None, help="attention plugin name (default: the model's own)")
    g.add_argument("--model", default="gpt", help="model name (see llmkit plugins --family models)")
    g.add_argument("--threads", type=int, default=None)
    g.set_defaults(func=cmd_bench_generate)
    t = bench_sub.add_parser("train", help="training tokens/s per attention plugin and precision")
    t.add_argument("--config", choices=["124M", "small", "run"], default="run",
                   help="model size: the 124M GPT, a small one, or llmkit run's default")
    t.add_argument("--attention", default="mha", help="comma-separated attention names; mha is the model's own "
                   "(the book's model takes any: --model gpt-book --attention mha,sdpa,gqa,sliding-window)")
    t.add_argument("--precision", default="fp32,bf16")
    t.add_argument("--steps", type=int, default=8)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--model", default="gpt", help="the model to train (see llmkit plugins --family models)")
    t.set_defaults(func=cmd_bench_train)
    instructor = _instructor_cli()
    if instructor is not None:
        instructor.add_bench_grade_parser(bench_sub)
    else:
        _instructor_only(bench_sub, "grade", "bench grade")
    return parser


# ------------------------------------------------------------------ llmkit course

INSTRUCTOR_PACKAGE = "plugins/instructor"  # pip install -e plugins/instructor, from the kit's checkout
INSTRUCTOR_COMMANDS = ("build", "translate", "release", "grade", "status", "export")


def _instructor_cli():
    """The instructor package's commands (``llmkit_instructor.cli``), or None in a student's environment."""
    import importlib.util

    if importlib.util.find_spec("llmkit_instructor") is None:
        return None
    import llmkit_instructor.cli

    return llmkit_instructor.cli


def _instructor_only(subparsers, name: str, command: str) -> None:
    """A verb of the instructor package, absent here: it answers with one line naming the package."""
    def refuse(args):
        raise LLMKitError(f"`llmkit {command}` is an instructor command and the instructor package is not "
                          f"installed here; install it with `pip install -e {INSTRUCTOR_PACKAGE}` from the "
                          "kit's folder (a student needs only `llmkit course student-setup`)")

    refuse.takes_any_arguments = True  # main() hands it whatever follows, options included
    p = subparsers.add_parser(name, help="(instructor package, not installed)", add_help=False)
    p.set_defaults(func=refuse)


def cmd_student_setup(args) -> None:
    from pathlib import Path

    from .student import student_setup

    path = student_setup(args.course_id, args.exchange, args.config, force=args.force)
    print(f"wrote {path}: course {args.course_id!r}, exchange {Path(args.exchange).expanduser().resolve()}")
    print("restart JupyterLab; the Assignments tab lists what your instructor released")


def _add_course_parser(sub) -> None:
    course = sub.add_parser("course", help="the course over nbgrader: student-setup; with the instructor package "
                                           "also build, translate, release, grade, status, export")
    course_sub = course.add_subparsers(dest="course_command", required=True)
    instructor = _instructor_cli()
    if instructor is not None:
        instructor.add_course_commands(course_sub)
    else:
        for name in INSTRUCTOR_COMMANDS:
            _instructor_only(course_sub, name, f"course {name}")
    p = course_sub.add_parser("student-setup", help="for students: point JupyterLab's Assignments tab at a course")
    p.add_argument("--course-id", default="llmkit", help="the course id your instructor gave (default llmkit)")
    p.add_argument("--exchange", required=True, metavar="PATH", help="the course's exchange folder")
    p.add_argument("--config", metavar="PATH",
                   help="where to write (default ~/.jupyter/nbgrader_config.py, or $JUPYTER_CONFIG_DIR)")
    p.add_argument("--force", action="store_true", help="replace an nbgrader_config.py not written by llmkit")
    p.set_defaults(func=cmd_student_setup)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args.func, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        args.func(args)
    except LLMKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
