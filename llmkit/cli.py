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
            print(f"  {c.name:<16} {provider_label(c.provider):<30} {doc}")


def cmd_bench_generate(args) -> None:
    from .bench import bench_generate

    rows = bench_generate(args.config, args.prompt_tokens, args.new_tokens, args.attention, args.threads)
    print(f"greedy generation, GPT config {args.config}, prompt {args.prompt_tokens} tokens, "
          f"{args.new_tokens} new tokens, {__import__('torch').get_num_threads()} threads")
    print(f"{'path':<10} {'seconds':>8} {'tokens/s':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['path']:<10} {r['seconds']:>8.2f} {r['tokens_per_s']:>9.1f} {r['ratio']:>5.2f}x")
    print("identical tokens:", "yes" if rows[0]["identical_tokens"] else "NO")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmkit", description="Build a GPT from scratch, one plugin at a time.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered components: family, name, provider, description")
    p.add_argument("--family", help="only this family (tokenizers, samplers, attention, models, ...)")
    p.set_defaults(func=cmd_plugins)

    bench = sub.add_parser("bench", help="print speed figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    g = bench_sub.add_parser("generate", help="tokens/s of generation with and without the KV cache")
    g.add_argument("--config", choices=["124M", "small"], default="124M")
    g.add_argument("--prompt-tokens", type=int, default=32)
    g.add_argument("--new-tokens", type=int, default=64)
    g.add_argument("--attention", default=None, help="attention plugin name (default: the reference MHA)")
    g.add_argument("--threads", type=int, default=None)
    g.set_defaults(func=cmd_bench_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
