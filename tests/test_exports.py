"""Grade exports an instructor uploads: llmkit's CSV, Canvas's and Moodle's import formats.

The gradebook is filled through nbgrader's own Gradebook API, as autograding fills it: two
assignments of 10 points, Ada solved both (7.5 and 10), Bob submitted the first and scored 0,
and Cy submitted nothing. Bob's 0 and Cy's "not submitted" must never look alike.
"""

import csv

import pytest
from nbgrader.api import Gradebook

from llmkit.cli import main
from llmkit.errors import LLMKitError
from llmkit_instructor.gradebook import COURSE_ID, export

TOK, ATT = "01-tokenization", "04-attention"

# nbgrader's add_submission trips a harmless SQLAlchemy 2.1 warning ("not in session"); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


def fill(url: str) -> None:
    """The class above, written the way nbgrader's autograder writes it."""
    with Gradebook(url, course_id=COURSE_ID) as gb:
        for assignment, cells in ((TOK, {"ex1": 4, "ex2": 6}), (ATT, {"ex1": 10})):
            gb.add_assignment(assignment)
            gb.add_notebook(assignment, assignment)
            for cell, points in cells.items():
                gb.add_grade_cell(cell, assignment, assignment, max_score=points, cell_type="code")
        gb.add_student("ada", first_name="Ada", last_name="Lovelace", email="ada@example.org", lms_user_id="101")
        gb.add_student("bob", first_name="Bob", last_name="Babbage", email="bob@example.org")
        gb.add_student("cy")
        scores = {("ada", TOK): {"ex1": 4, "ex2": 3.5}, ("ada", ATT): {"ex1": 10}, ("bob", TOK): {"ex1": 0, "ex2": 0}}
        for (student, assignment), cells in scores.items():
            gb.add_submission(assignment, student)
            for cell, points in cells.items():
                grade = gb.find_grade(cell, assignment, assignment, student)
                grade.auto_score, grade.needs_manual_grade = points, False  # as the autograder records it
            gb.db.commit()


@pytest.fixture
def gradebook_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    fill(url)
    return url


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_csv_has_one_row_per_student_and_assignment_with_a_status(gradebook_url, tmp_path):
    table = read(export(gradebook_url, tmp_path / "grades.csv", "csv"))
    header, body = table[0], table[1:]
    assert header == ["student_id", "first_name", "last_name", "email", "assignment", "status",
                      "score", "max_score", "late_penalty"]
    got = {(r[0], r[4]): (r[5], r[6], r[7]) for r in body}
    assert len(body) == 6
    assert got == {
        ("ada", TOK): ("graded", "7.5", "10"),
        ("ada", ATT): ("graded", "10", "10"),
        ("bob", TOK): ("graded", "0", "10"),
        ("bob", ATT): ("not submitted", "", "10"),
        ("cy", TOK): ("not submitted", "", "10"),
        ("cy", ATT): ("not submitted", "", "10"),
    }


def test_canvas_has_its_documented_columns_and_points_possible_row(gradebook_url, tmp_path):
    table = read(export(gradebook_url, tmp_path / "canvas.csv", "canvas"))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", TOK, ATT]
    assert table[1] == ["Points Possible", "", "", "", "", "10", "10"]
    rows = {r[3]: r for r in table[2:]}
    assert rows["ada"] == ["Lovelace, Ada", "101", "", "ada", "", "7.5", "10"]
    assert rows["bob"][5:] == ["0", ""]  # a real 0, then nothing submitted: a blank, never a 0
    assert rows["cy"] == ["cy", "", "", "cy", "", "", ""]


def test_moodle_has_identity_columns_then_one_column_per_grade_item(gradebook_url, tmp_path):
    table = read(export(gradebook_url, tmp_path / "moodle.csv", "moodle"))
    assert table[0] == ["First name", "Last name", "Username", "Email address", TOK, ATT]
    rows = {r[2]: r[4:] for r in table[1:]}
    assert rows == {"ada": ["7.5", "10"], "bob": ["0", ""], "cy": ["", ""]}


def test_an_open_gradebook_exports_the_same_as_its_url(gradebook_url, tmp_path):
    with Gradebook(gradebook_url, course_id=COURSE_ID) as gb:
        from_object = export(gb, tmp_path / "a.csv", "canvas")
    assert read(from_object) == read(export(gradebook_url, tmp_path / "b.csv", "canvas"))


def test_nbgraders_api_exports_the_same_as_its_url(gradebook_url, tmp_path):
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    api = NbGraderAPI(config=Config({"CourseDirectory": {
        "root": str(tmp_path), "db_url": gradebook_url, "course_id": COURSE_ID}}))
    assert read(export(api, tmp_path / "a.csv")) == read(export(gradebook_url, tmp_path / "b.csv"))


def test_bad_requests_are_one_line_errors(gradebook_url, tmp_path):
    with pytest.raises(LLMKitError, match="choose one of: csv, canvas, moodle"):
        export(gradebook_url, tmp_path / "x.csv", "blackboard")
    with pytest.raises(LLMKitError, match="No gradebook at"):
        export(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "x.csv")
    assert not (tmp_path / "missing.db").exists()  # a typo must not leave an empty gradebook behind
    with pytest.raises(LLMKitError, match="is not a database URL"):
        export("gradebook.db", tmp_path / "x.csv")


def test_cli_writes_each_format_beside_the_course(gradebook_url, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LLMKIT_GRADEBOOK_URL", raising=False)
    assert main(["course", "export", "--course", str(tmp_path), "--format", "canvas"]) == 0
    assert read(tmp_path / "grades-canvas.csv")[1][0] == "Points Possible"
    out = tmp_path / "elsewhere" / "m.csv"
    assert main(["course", "export", "--course", str(tmp_path), "--format", "moodle", "--out", str(out)]) == 0
    assert read(out)[0][2] == "Username"
    assert "wrote" in capsys.readouterr().out


def test_cli_without_a_gradebook_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LLMKIT_GRADEBOOK_URL", raising=False)
    assert main(["course", "export", "--course", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: No gradebook at") and "\n" not in err
