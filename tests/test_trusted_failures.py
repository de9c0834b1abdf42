"""What a dead kernel costs: the tests it never reached, never a verdict already given."""

from nbformat.v4 import new_code_cell, new_notebook

from llmkit_instructor.grading.trusted import TrustedExecute


def _test_cell(grade_id, outputs=()):
    cell = new_code_cell("assert True", metadata={"nbgrader": {"grade": True, "solution": False,
                                                               "grade_id": grade_id, "points": 1}})
    cell.outputs = list(outputs)
    return cell


def test_tests_graded_before_the_kernel_died_keep_their_verdicts():
    passed_hidden = _test_cell("a-hidden")  # a pass has no output
    printed = _test_cell("a-visible", [{"output_type": "stream", "name": "stdout", "text": "looks right\n"}])
    failed = _test_cell("b-hidden", [{"output_type": "error", "ename": "GradingError", "evalue": "no",
                                      "traceback": []}])
    student = new_code_cell("x = 1", metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "c"}})
    unreached_before = _test_cell("c-hidden")  # before the failing cell, but its verdict never came
    after = _test_cell("d-visible", [{"output_type": "stream", "name": "stdout", "text": "stale, from the student\n"}])
    nb = new_notebook(cells=[printed, passed_hidden, failed, student, unreached_before, after])
    grader = TrustedExecute()
    grader._dead = "the kernel's output stopped arriving for 30 s"
    grader._graded = {0, 1, 2}
    grader._fail_rest(nb, start=5)
    assert nb.cells[0].outputs[0]["text"] == "looks right\n"
    assert nb.cells[1].outputs == []  # still a pass
    assert nb.cells[2].outputs[0]["ename"] == "GradingError"
    assert nb.cells[4].outputs[0]["ename"] == "KernelDied"
    assert nb.cells[5].outputs[0]["ename"] == "KernelDied" and "30 s" in nb.cells[5].outputs[0]["evalue"]


def test_late_outputs_do_not_end_the_kernel():
    grader = TrustedExecute()
    assert grader.raise_on_iopub_timeout is False and grader.iopub_timeout >= 30
