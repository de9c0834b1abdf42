"""The instructor's commands: ``llmkit course build | translate | release | grade | status | export``
and ``llmkit bench grade``.

The kit's CLI (``llmkit/cli.py``) adds them when this package is installed; without it, a student's
environment has only ``llmkit course student-setup`` and these verbs answer with one line that names
this package.
"""

from __future__ import annotations

from pathlib import Path

from llmkit.errors import LLMKitError


def _root(args) -> Path:
    from .course import default_course_root

    return Path(args.course).resolve() if args.course else default_course_root()


def cmd_translate(args) -> None:
    from .editions import translate

    print("\n".join(translate(_root(args), args.lang)))


def cmd_build(args) -> None:
    from .course import build

    if args.lang:  # an edition in another language (llmkit/i18n)
        from .editions import build as build_editions

        print("\n".join(build_editions(_root(args), args.lang, args.assignment or None, not args.no_validate)))
        return
    report = build(_root(args), only=args.assignment or None, validate=not args.no_validate)
    print(f"generated {len(report.generated)} assignments: {', '.join(report.generated)}")
    if report.problems:
        for problem in report.problems:
            print(f"problem: {problem}")
        raise LLMKitError(f"{len(report.problems)} problem(s) in the course; fix them before releasing.")
    if report.validated:
        print("every source notebook validates; no release contains solution code or hidden tests")
    else:
        print("solutions NOT validated (--no-validate); no release contains solution code or hidden tests")


def cmd_release(args) -> None:
    from .course import release

    done = release(_root(args), only=args.assignment or None, force=args.force)
    for name in done["released"]:
        print(f"released {name} to {done['exchange']}")
    for name in done["already"]:
        print(f"{name} was already released (--force replaces it)")
    if done["not_built"] and not args.assignment:
        print(f"not built, so not released: {', '.join(done['not_built'])}; "
              f"run `llmkit course build {' '.join(done['not_built'])}`")
    if not done["released"] and not done["already"]:
        raise LLMKitError("nothing to release: no assignment is built; run `llmkit course build` first.")


def _summary(outcome: dict) -> list[str]:
    """The closing table: what happened to each submission, and where a notebook's time went."""
    lines = []
    graded, failed, unchanged = outcome["graded"], outcome["failed"], outcome["unchanged"]
    lines.append(f"{'graded':<12} {len(graded):>5}")
    lines.append(f"{'unchanged':<12} {len(unchanged):>5}   (graded before, same content; --force grades them again)")
    lines.append(f"{'failed':<12} {len(failed):>5}")
    if outcome["collected"]:
        lines.append(f"{'collected':<12} {len(outcome['collected']):>5}   (from the exchange)")
    if outcome["returned"]:
        lines.append(f"{'returned':<12} {len(outcome['returned']):>5}   (feedback in the exchange: Fetch Feedback)")
    n = outcome["notebooks"]
    if n:
        s = outcome["seconds"]
        per = {k: v / n for k, v in s.items()}
        lines.append(f"{n} notebook(s) in {outcome['wall_seconds']:.1f} s on {outcome['workers']}: "
                     f"{60 * n / max(outcome['wall_seconds'], 1e-9):.1f} per minute")
        lines.append("seconds per notebook: " + ", ".join(
            f"{name} {per.get(key, 0):.1f}" for name, key in (
                ("sandbox", "sandbox"), ("kernel start", "kernel"), ("probe", "probe"), ("execution", "execute"),
                ("kernel stop", "stop"), ("prepare", "prepare"), ("record+feedback", "record"))))
    for student, assignment, reason in failed:
        lines.append(f"failed: {student}/{assignment}: {reason}")
    return lines


def cmd_grade(args) -> None:
    from .course import grade

    root = _root(args)
    if args.no_sandbox:
        print("warning: grading WITHOUT the sandbox: student code can read and change this machine's files")
    csv = Path(args.csv) if args.csv else root / "grades.csv"
    from .grading.parallel import have_dask

    if args.workers is None and not args.cluster and not have_dask():
        print("note: Dask is not installed, so notebooks are graded one at a time in this process; "
              "pip install 'dask[distributed]' (a dependency of the instructor package) for one worker per core")
    outcome = grade(root, args.assignment, args.student, csv, sandbox=not args.no_sandbox,
                    workers=args.workers, cluster=args.cluster, force=args.force)
    for line in _summary(outcome):
        print(line)
    print(f"feedback in {root / 'feedback'}; grades in {csv}")


def cmd_status(args) -> None:
    from .course import status

    rows = status(_root(args))
    if not rows:
        print("no submissions yet")
        return
    print(f"{'student':<20} {'assignment':<30} {'state':<9} {'score':>9}  note")
    for r in rows:
        score = f"{r['score']:g}/{r['max_score']:g}" if r["score"] is not None else ""
        print(f"{r['student']:<20} {r['assignment']:<30} {r['state']:<9} {score:>9}  {r['note']}".rstrip())
    counts = {state: sum(r["state"] == state for r in rows) for state in ("waiting", "graded", "returned")}
    print(", ".join(f"{n} {state}" for state, n in counts.items()))


def cmd_export(args) -> None:
    from .gradebook import export, gradebook_url

    root = _root(args)
    default = "grades.csv" if args.format == "csv" else f"grades-{args.format}.csv"
    path = export(gradebook_url(root), Path(args.out) if args.out else root / default, args.format)
    print(f"wrote {path} ({args.format})")


def _workers(text: str) -> int:
    import argparse

    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a number of processes (0: grade in this process), not {text!r}")
    return int(text)


COMMANDS = ("build", "translate", "release", "grade", "status", "export")


def add_course_commands(course_sub) -> None:
    """The instructor's verbs under ``llmkit course`` (the kit adds ``student-setup`` itself)."""

    def add(name, func, help_text, course_option=True):
        p = course_sub.add_parser(name, help=help_text)
        if course_option:
            p.add_argument("--course", help="course root (the folder with nbgrader_config.py); default ./course")
        p.set_defaults(func=func)
        return p

    p = add("build", cmd_build, "validate sources, generate student versions, check releases are clean")
    p.add_argument("assignment", nargs="*", help="only these assignments")
    p.add_argument("--no-validate", action="store_true", help="skip running the solutions")
    p.add_argument("--lang", metavar="LANG", help="build the edition in LANG (es, zh-TW, af, or all) from the English "
                                                  "and course/locale/LANG, as assignments NN-name-LANG")
    p = add("translate", cmd_translate, "extract the English into course/locale; changed texts become fuzzy")
    p.add_argument("--lang", metavar="LANG", help="the catalog(s) to update or start: es, zh-TW, af, a,b or all "
                                                  "(default: every existing one)")
    p = add("release", cmd_release, "release built assignments to the exchange (JupyterLab's Assignments tab)")
    p.add_argument("assignment", nargs="*", help="only these (default: every built one)")
    p.add_argument("--force", action="store_true", help="replace an assignment already in the exchange")
    p = add("grade", cmd_grade, "collect from the exchange, grade new or changed submissions, return feedback, "
                                "export grades.csv")
    p.add_argument("assignment", nargs="?")
    p.add_argument("--student")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="grading processes on this machine (default: one per core; 0: in this process)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://scheduler:8786: its workers run the notebooks")
    p.add_argument("--force", action="store_true", help="grade again submissions that have not changed")
    p.add_argument("--csv", help="where to write the grades (default COURSE/grades.csv)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student kernels unprotected (verdicts stay trusted); never for a real class")
    add("status", cmd_status, "what is waiting, graded and returned, with scores")
    p = add("export", cmd_export, "write the grades for upload: csv, or Canvas's or Moodle's import format")
    p.add_argument("--format", choices=["csv", "canvas", "moodle"], default="csv")
    p.add_argument("--out", help="where to write (default COURSE/grades.csv or COURSE/grades-FORMAT.csv)")


def cmd_bench_grade(args) -> None:
    from .course import assignments, default_course_root
    from .grading.benchmark import bench_grade, print_report

    source = Path(args.course).resolve() if args.course else default_course_root()
    known = assignments(source)
    names = known if args.assignments == "all" else args.assignments.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LLMKitError(f"unknown assignment(s) {', '.join(unknown)}; the course has: {', '.join(known)}")
    report = bench_grade(source, names, args.students, tuple(args.workers), sandbox=not args.no_sandbox)
    print_report(report)


def add_bench_grade_parser(bench_sub) -> None:
    """``llmkit bench grade``, for cli.py's bench command."""
    g = bench_sub.add_parser("grade", help="notebooks graded per minute with 1 and 2 workers, and the overhead "
                                           "of an empty notebook")
    g.add_argument("--students", type=int, default=30, help="simulated students (solved, untouched, mutant)")
    g.add_argument("--assignments", default="all", help="comma-separated, e.g. 04-attention (default: all)")
    g.add_argument("--workers", type=_workers, nargs="+", default=[1, 2], help="worker settings to compare")
    g.add_argument("--course", help="the course to copy (default ./course)")
    g.add_argument("--no-sandbox", action="store_true", help="kernels unprotected (to compare the sandbox's cost)")
    g.set_defaults(func=cmd_bench_grade)
