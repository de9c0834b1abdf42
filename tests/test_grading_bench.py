"""``llmkit bench grade``'s report: the figures per worker setting, and every grade that differs."""

from llmkit_instructor.grading.benchmark import grade_differences, print_report


def test_grades_that_differ_between_runs_are_named():
    first = {("ana", "01"): 10.0, ("ben", "01"): 4.0}
    second = {("ana", "01"): 10.0, ("ben", "01"): 6.0, ("cy", "01"): 1.0}
    assert grade_differences([first, first]) == []
    assert grade_differences([first, second]) == [
        {"student": "ben", "assignment": "01", "scores": [4.0, 6.0]},
        {"student": "cy", "assignment": "01", "scores": [None, 1.0]},
    ]


def test_the_report_prints_rates_speedup_and_differences(capsys):
    stages = {"kernel": 0.6, "probe": 1.7, "execute": 6.4, "record": 0.8}
    report = {
        "students": 2, "assignments": ["01"], "counts": {"solved": 1, "untouched": 1, "mutant": 0},
        "cores": 2, "load": [0.1, 1.5],
        "rows": [{"workers": 1, "notebooks": 2, "failed": 0, "seconds": 20.0, "per_minute": 6.0, "speedup": 1.0,
                  "stages": stages},
                 {"workers": 2, "notebooks": 2, "failed": 0, "seconds": 12.5, "per_minute": 9.6, "speedup": 1.6,
                  "stages": stages}],
        "same_grades": False,
        "differences": [{"student": "ben", "assignment": "01", "scores": [4.0, 6.0]}],
        "empty_before": 3.6, "empty_after": 3.0, "empty_stages": stages, "empty_rounds": 3,
    }
    print_report(report)
    out = capsys.readouterr().out
    assert "1.60x" in out and "9.60" in out and "same grades in every run: NO" in out
    assert "ben 01: 1 worker(s) 4.0, 2 worker(s) 6.0" in out
    assert "3.6 s before" in out and "3.0 s after" in out
