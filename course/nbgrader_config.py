"""nbgrader configuration for the llmkit course (this folder is the course root).

    cd course && nbgrader generate_assignment 04-attention     # nbgrader's own commands work here
    llmkit course build                                        # or the kit's instructor CLI

The gradebook is SQLite beside this file unless LLMKIT_GRADEBOOK_URL names another SQLAlchemy URL
(e.g. postgresql://user@host/llmkit for a large class).
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "llmkit"
c.CourseDirectory.root = HERE
c.CourseDirectory.db_url = os.environ.get("LLMKIT_GRADEBOOK_URL", "sqlite:///" + os.path.join(HERE, "gradebook.db"))
c.Exchange.root = os.environ.get("LLMKIT_EXCHANGE", os.path.join(HERE, "exchange"))

# Each graded cell may take this long; an endless loop is interrupted and graded as an error.
c.Execute.timeout = int(os.environ.get("LLMKIT_CELL_TIMEOUT", "120"))
c.Execute.interrupt_on_timeout = True
# Widgets fall back to static output when notebooks run without a browser (autograding).
c.Execute.extra_arguments = []
os.environ.setdefault("LLMKIT_NO_WIDGETS", "1")

# Trusted grading: student kernels run in the bubblewrap sandbox and every test cell is judged in the
# grader process (llmkit_instructor/grading/trusted.py); nbgrader's own Execute never runs here. Both
# `llmkit course grade` and the formgrader's autograde button read this list.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,  # noqa: E402
                                    LimitOutput, SaveAutoGrades)

c.Autograde.autograde_preprocessors = [
    "llmkit_instructor.grading.trusted.TrustedExecute", IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]
c.TrustedExecute.sandbox = os.environ.get("LLMKIT_NO_SANDBOX") != "1"
c.TrustedExecute.notebook_timeout = int(os.environ.get("LLMKIT_NOTEBOOK_TIMEOUT", "900"))
c.TrustedExecute.timeout = c.Execute.timeout
c.TrustedExecute.interrupt_on_timeout = True
# The course's secret salt for the hidden checks' inputs: made on the first grade, kept beside this
# file, never inside a sandbox. The kit's checks are public; with the salt, their inputs are not.
c.TrustedExecute.salt_file = os.environ.get("LLMKIT_SALT_FILE") or os.path.join(os.path.dirname(__file__), ".llmkit-salt")
# Answer equivalents the sandbox leaves out besides the reference modules of the graded names.
c.TrustedExecute.hidden_modules = {
    "01-tokenization": ["llmkit_tokenizers"],  # its char and BPE tokenizers answer exercises 3 and 4
    "02-data-sampling": ["llmkit_samplers"],  # its windows and random blocks answer the dataset exercises
    "04-attention": ["llmkit_sdpa", "llmkit_gqa", "llmkit_sliding_window"],
    "05-gpt-architecture": ["llmkit_gpt"],
    # The kit's encoder plugin (mask_tokens, pooling, padding mask), its special tokens and recipes answer 10.
    "10-encoders-and-masked-lm": ["llmkit_encoder", "llmkit.special_tokens", "llmkit.beyond"],
    # the kit's chunker, top-k and prompt (and the reader built on them), and the encoder's mean pooling
    "11-retrieval-augmented-generation": ["llmkit.beyond.rag", "llmkit.beyond.reader", "llmkit_encoder"],
}
# Feedback shows diagnoses and the student's outputs, never hidden test code or grader tracebacks;
# the page opens with a summary per exercise (title, points, diagnosis), and every output wraps.
c.GenerateFeedback.preprocessors = [
    "llmkit_instructor.grading.feedback.HideGraderInternals", "nbgrader.preprocessors.GetGrades",
    "llmkit_instructor.grading.feedback.SummarizeExercises", "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
import importlib.util  # noqa: E402 - found without importing the kit (and torch) for every nbgrader command

_package_dir = lambda name: os.path.dirname(importlib.util.find_spec(name).origin)  # noqa: E731
# nbgrader's "feedback" template, found first in the kit's folder of that name: its llmkit_feedback.html.j2
# extends nbgrader's page (llmkit_instructor/grading/templates/feedback). The name is nbgrader's own, so the
# command line and NbGraderAPI (which may set it to "feedback" itself) find the same page.
c.HTMLExporter.template_name = "feedback"
c.HTMLExporter.template_file = "llmkit_feedback.html.j2"
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(_package_dir("llmkit_instructor"), "grading", "templates"),
    os.path.join(_package_dir("nbgrader"), "server_extensions", "formgrader", "templates"),
]
# The Validate button and `nbgrader validate`: a failed test reads as its exercise and one sentence.
from llmkit.validate_summary import use_in_validate  # noqa: E402

use_in_validate(c)

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
