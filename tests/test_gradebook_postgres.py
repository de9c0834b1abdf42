"""The gradebook on a real PostgreSQL server, and SQLite's in WAL mode.

``./dev test`` (and so CI) starts a PostgreSQL server on 127.0.0.1 and sets
LLMKIT_TEST_POSTGRES_URL. Each test works in a schema of its own on it, so runs from two clones
can share one server. Without the variable these tests skip, except in CI (CI=true), where a
missing server is a failure: a green CI must mean PostgreSQL was really tested.
"""

import os
import sqlite3
import threading
import uuid

import pytest
from nbgrader.api import Gradebook, InvalidEntry
from sqlalchemy.engine import make_url

from llmkit_instructor.gradebook import COURSE_ID, enable_wal, export, open_gradebook, rows

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's, under SQLAlchemy 2.1

ASSIGNMENT = "04-attention"


@pytest.fixture
def pg_url():
    """A gradebook URL whose tables land in a fresh schema, dropped afterwards."""
    base = os.environ.get("LLMKIT_TEST_POSTGRES_URL")
    if not base:
        message = "LLMKIT_TEST_POSTGRES_URL is not set; ./dev test starts a PostgreSQL server and sets it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    import psycopg

    plain = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"gradebook_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        message = f"cannot reach the test PostgreSQL server: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # libpq's "options" puts every connection of nbgrader's engine in that schema.
    yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def make_assignment(gb, cells=(("ex1", 4), ("ex2", 6))):
    gb.add_assignment(ASSIGNMENT)
    gb.add_notebook(ASSIGNMENT, ASSIGNMENT)
    for cell, points in cells:
        gb.add_grade_cell(cell, ASSIGNMENT, ASSIGNMENT, max_score=points, cell_type="code")


def record(gb, student, points):
    """What the autograder does for one submission: a submission row, then one score per cell."""
    gb.add_submission(ASSIGNMENT, student)
    for cell, score in points.items():
        grade = gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, student)
        grade.auto_score, grade.needs_manual_grade = score, False
    gb.db.commit()


def test_grades_written_in_several_transactions_read_back_from_postgres(pg_url):
    assert make_url(pg_url).get_backend_name() == "postgresql"
    with open_gradebook(pg_url) as gb:  # the course's structure, one transaction per call
        make_assignment(gb)
        for student in ("ada", "bob", "cy"):
            gb.add_student(student, first_name=student.title())
    with open_gradebook(pg_url) as gb:  # another connection: grades for two students
        record(gb, "ada", {"ex1": 4, "ex2": 3.5})
        record(gb, "bob", {"ex1": 0, "ex2": 0})
    with open_gradebook(pg_url) as gb:  # a third: regrading changes one score
        grade = gb.find_grade("ex2", ASSIGNMENT, ASSIGNMENT, "ada")
        grade.manual_score = 6
        gb.db.commit()
    with Gradebook(pg_url, course_id=COURSE_ID) as gb:  # nbgrader's own class reads it all back
        assert gb.find_submission(ASSIGNMENT, "ada").score == 10
        assert gb.find_submission(ASSIGNMENT, "bob").score == 0
        got = {(r.student, r.status, r.score) for r in rows(gb)}
    assert got == {("ada", "graded", 10.0), ("bob", "graded", 0.0), ("cy", "not submitted", None)}


def test_a_failed_transaction_loses_nothing_already_recorded(pg_url):
    with open_gradebook(pg_url) as gb:
        make_assignment(gb)
        gb.add_student("ada")
        record(gb, "ada", {"ex1": 4, "ex2": 6})
        with pytest.raises(InvalidEntry):
            gb.add_student("ada")  # the same primary key again: PostgreSQL refuses, nbgrader rolls back
        assert gb.find_submission(ASSIGNMENT, "ada").score == 10


def test_two_writers_at_once_both_land(pg_url):
    with open_gradebook(pg_url) as gb:
        make_assignment(gb)
        for student in ("ada", "bob", "cy", "dee"):
            gb.add_student(student)
    errors = []

    def grade(students):
        try:
            with open_gradebook(pg_url) as gb:
                for student in students:
                    record(gb, student, {"ex1": 2, "ex2": 3})
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=grade, args=(group,)) for group in (("ada", "bob"), ("cy", "dee"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_gradebook(pg_url) as gb:
        assert sorted((s.student.id, s.score) for s in gb.find_assignment(ASSIGNMENT).submissions) == [
            ("ada", 5), ("bob", 5), ("cy", 5), ("dee", 5)]


def test_postgres_and_sqlite_export_the_same_grades(pg_url, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    for url in (pg_url, sqlite_url):
        with open_gradebook(url) as gb:
            make_assignment(gb)
            gb.add_student("ada", first_name="Ada", last_name="Lovelace")
            gb.add_student("bob")
            record(gb, "ada", {"ex1": 4, "ex2": 2.5})
    pg_file = export(pg_url, tmp_path / "pg.csv", "canvas")
    assert pg_file.read_text() == export(sqlite_url, tmp_path / "sqlite.csv", "canvas").read_text()


# ----------------------------------------------------------------------------- SQLite: WAL mode


def journal_mode(path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_sqlite_gradebooks_are_opened_in_wal_mode(tmp_path):
    path = tmp_path / "course" / "gradebook.db"
    with open_gradebook(f"sqlite:///{path}") as gb:
        make_assignment(gb)
    assert journal_mode(path) == "wal"  # stored in the file: nbgrader's own later connections get it
    assert enable_wal(f"sqlite:///{path}") == "wal"
    assert enable_wal("postgresql://grader@db/llmkit") is None


def test_a_reader_mid_transaction_does_not_block_recording_a_grade(tmp_path):
    """With SQLite's default journal, a reader holding a transaction open (a status query, the
    formgrader) makes the grader's commit fail with 'database is locked'. In WAL mode it does not."""
    path = tmp_path / "gradebook.db"
    url = f"sqlite:///{path}"
    with open_gradebook(url) as gb:
        make_assignment(gb)
        gb.add_student("ada")
    reader = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM grade_cells").fetchone()  # holds its read snapshot
        with open_gradebook(url) as gb:
            record(gb, "ada", {"ex1": 4, "ex2": 6})
            assert gb.find_submission(ASSIGNMENT, "ada").score == 10
        reader.execute("COMMIT")
    finally:
        reader.close()
