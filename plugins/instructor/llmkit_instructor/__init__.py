"""llmkit's instructor side: build, release and grade the course (a package of its own).

The kit (``llmkit``) is what students install: the framework, the widgets, the visible tests and
``llmkit course student-setup``. This package adds what only an instructor's machine needs:

- ``grading``: the trusted grader, the sandbox for student kernels, the hidden checks and their
  mistake tables, parallel and cluster grading;
- ``course``: nbgrader's build, release, grade and feedback cycle in the kit's verbs;
- ``gradebook``: the SQLite or PostgreSQL gradebook and the grade exports;
- ``editions``: the course's editions in other languages (``llmkit course translate`` and
  ``build --lang``);
- ``cli``: those verbs under ``llmkit course`` and ``llmkit bench grade``.

Install it beside the kit: ``pip install -e plugins/instructor``. No student kernel can import it:
the sandbox never mounts it.
"""
