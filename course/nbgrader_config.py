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

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
