"""``llmkit course build | release | grade | status``: the instructor's commands."""

from __future__ import annotations

from pathlib import Path


def _root(args) -> Path:
    from .course import default_course_root

    return Path(args.course).resolve() if args.course else default_course_root()


def cmd_translate(args) -> None:
    from .i18n.cli import translate

    print("\n".join(translate(_root(args), args.lang)))


def cmd_build(args) -> None:
    from .course import build

    if args.lang:  # an edition in another language (llmkit/i18n)
        from .i18n.cli import build as build_editions

        print("\n".join(build_editions(_root(args), args.lang, args.assignment or None, not args.no_validate)))
        return
    report = build(_root(args), only=args.assignment or None, validate=not args.no_validate)
    print(f"generated {len(report.generated)} assignments: {', '.join(report.generated)}")
    if report.problems:
        from .errors import LLMKitError

        for problem in report.problems:
            print(f"problem: {problem}")
        raise LLMKitError(f"{len(report.problems)} problem(s) in the course; fix them before releasing.")
    print("every source notebook validates; no release contains solution code or hidden tests")


def cmd_release(args) -> None:
    from .course import release

    for name in release(_root(args), only=args.assignment or None):
        print(f"released {name}")


def cmd_grade(args) -> None:
    from .course import grade

    root = _root(args)
    if args.no_sandbox:
        print("warning: grading WITHOUT the sandbox: student code can read and change this machine's files")
    outcome = grade(root, args.assignment, args.student, Path(args.csv) if args.csv else None,
                    sandbox=not args.no_sandbox)
    print(f"graded {len(outcome['graded'])} submission(s); feedback in {root / 'feedback'}; "
          f"grades in {args.csv or root / 'grades.csv'}")
    for student, assignment, error in outcome["failed"]:
        print(f"could not grade {student}/{assignment}: {error.splitlines()[-1] if error else 'unknown error'}")


def cmd_status(args) -> None:
    from .course import scores, submitted

    root = _root(args)
    rows = {(r["student"], r["assignment"]): r for r in scores(root)}
    pairs = sorted(set(submitted(root)) | set(rows))
    if not pairs:
        print("no submissions yet")
        return
    print(f"{'student':<20} {'assignment':<32} {'score':>12}")
    for student, assignment in pairs:
        row = rows.get((student, assignment))
        score = f"{row['score']:g}/{row['max_score']:g}" if row else "not graded"
        print(f"{student:<20} {assignment:<32} {score:>12}")


def cmd_export(args) -> None:
    from .gradebook import export, gradebook_url

    root = _root(args)
    default = "grades.csv" if args.format == "csv" else f"grades-{args.format}.csv"
    path = export(gradebook_url(root), Path(args.out) if args.out else root / default, args.format)
    print(f"wrote {path} ({args.format})")


def add_course_parser(sub) -> None:
    course = sub.add_parser("course", help="instructor commands over nbgrader: build, release, grade, status")
    course_sub = course.add_subparsers(dest="course_command", required=True)

    def add(name, func, help_text):
        p = course_sub.add_parser(name, help=help_text)
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
    p = add("release", cmd_release, "release generated assignments to the exchange (JupyterLab assignment list)")
    p.add_argument("assignment", nargs="*")
    p = add("grade", cmd_grade, "autograde submissions, write feedback, export grades.csv")
    p.add_argument("assignment", nargs="?")
    p.add_argument("--student")
    p.add_argument("--csv", help="where to write the grades (default COURSE/grades.csv)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student kernels unprotected (verdicts stay trusted); never for a real class")
    add("status", cmd_status, "who submitted what, and their scores")
    p = add("export", cmd_export, "write the grades for upload: csv, or Canvas's or Moodle's import format")
    p.add_argument("--format", choices=["csv", "canvas", "moodle"], default="csv")
    p.add_argument("--out", help="where to write (default COURSE/grades.csv or COURSE/grades-FORMAT.csv)")
