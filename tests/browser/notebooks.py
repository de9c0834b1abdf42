"""The notebooks and the tiny nbgrader course that the browser test opens in JupyterLab.

``demo_source_notebook()`` is an nbgrader *source* notebook (solutions included): widget cells, then
one graded answer and its test. ``release_assignments()`` turns it, with nbgrader's Python API, into a
released assignment in a temporary exchange, together with any assignment under the repository's
``course/source/`` (so the assignment list shows the real course too once it exists).
"""

from __future__ import annotations

import shutil
from pathlib import Path


COURSE_ID = "llmkit-demo"
ASSIGNMENT = "widgets-demo"
HOLD_ENV = "LLMKIT_DEMO_HOLD"  # a file path: the training cell pauses at step HOLD_STEP until it exists
HOLD_STEP = 8
SOLUTION = 'n_tokens = len(build_tokenizer("gpt2").encode("Hello world"))'


def new_code_cell(source):
    from nbformat.v4 import new_code_cell as make

    return make(source)


def new_markdown_cell(source):
    from nbformat.v4 import new_markdown_cell as make

    return make(source)


def _nbgrader(cell, grade_id, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    return cell


def _notebook(cells):
    from nbformat.v4 import new_notebook

    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


SETUP = """\
import os, time
import torch
torch.set_num_threads(1)  # a shared test machine
import llmkit
from llmkit.tokenizers import build_tokenizer, encode_text
from llmkit.widgets import TrainingDashboard, attention_heatmap, generation_playground, tokenizer_explorer"""

MODEL = """\
torch.manual_seed(123)
cfg = {"vocab_size": 50257, "context_length": 32, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
       "drop_rate": 0.0, "qkv_bias": False}
model = llmkit.create("models", "gpt", cfg)
attention_heatmap(model, "gpt2", "Your journey starts with one step", layer=1, head=2)"""

TRAIN = f"""\
from llmkit.data import load_corpus
from llmkit.training import TrainConfig, train
from llmkit_solutions.data_sampling import random_block_loader, sliding_window_loader

gpt2 = build_tokenizer("gpt2")
ids = encode_text(gpt2, load_corpus("builtin").text)
split = int(0.9 * len(ids))
train_loader = random_block_loader(ids[:split], batch_size=4, max_length=32, num_batches=6, seed=1)
eval_loaders = {{name: sliding_window_loader(part, batch_size=4, max_length=32, shuffle=False, drop_last=False)
                for name, part in (("train", ids[:split]), ("val", ids[split:]))}}


def hold_for_screenshot(record):
    # Test fixture only: with {HOLD_ENV} set, wait at step {HOLD_STEP} until that file exists, so the
    # browser test can photograph the dashboard mid-run. Without it (or once the file exists), no effect.
    flag = os.environ.get("{HOLD_ENV}")
    if flag and record["kind"] == "train" and record["step"] == {HOLD_STEP}:
        dashboard.refresh()  # draw the plot up to this step before pausing
        deadline = time.time() + 90
        while not os.path.exists(flag) and time.time() < deadline:
            time.sleep(0.1)


dashboard = TrainingDashboard(title="tiny GPT on the builtin corpus")
state = train(model, train_loader, eval_loaders,
              TrainConfig(epochs=2, max_steps=12, lr=3e-3, warmup_steps=2, eval_every=4, eval_batches=2,
                          sample_prompt="The", sample_tokens=10),
              tokenizer=gpt2, callbacks=[dashboard, hold_for_screenshot])  # shows itself at the first event"""

PLAYGROUND = 'generation_playground(model, tokenizer="gpt2", prompt="The", max_tokens=12)'


def demo_source_notebook():
    return _notebook([
        new_markdown_cell("# llmkit widgets demo\nRun every cell, then answer the question at the end."),
        new_code_cell(SETUP),
        new_code_cell('tokenizer_explorer("Hello, do you like tea? In the sunlit terraces of the palace.")'),
        new_code_cell(MODEL),
        new_code_cell(TRAIN),
        new_code_cell(PLAYGROUND),
        new_markdown_cell("How many GPT-2 tokens does `\"Hello world\"` have? Store the number in `n_tokens`."),
        _nbgrader(new_code_cell(f"### BEGIN SOLUTION\n{SOLUTION}\n### END SOLUTION"), "answer", solution=True),
        _nbgrader(new_code_cell("assert n_tokens == 2"), "test_answer", grade=True, locked=True, points=1),
    ])


def broken_notebook():
    """Cell 1: a widget whose build raises. Cell 2: a widget that builds fine (the positive control)."""
    return _notebook([
        new_code_cell("import torch\nfrom llmkit.widgets import attention_heatmap, tokenizer_explorer\n\n"
                      "class NoProjections(torch.nn.Module):\n    def forward(self, x):\n        return x\n\n"
                      "model = torch.nn.Module()\nmodel.trf_blocks = torch.nn.Sequential(torch.nn.Module())\n"
                      "model.trf_blocks[0].att = NoProjections()\n"
                      'attention_heatmap(model, "gpt2", "Hello world")'),
        new_code_cell('tokenizer_explorer("Hello world", tokenizers=("gpt2",))'),
    ])


def write_notebook(nb, path: Path) -> Path:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def course_layout(base: Path) -> dict:
    """Folders and ``nbgrader_config.py`` files of a course (``course``), its exchange and a student ``home``.

    Cheap: write it before starting JupyterLab in ``home``, where nbgrader's server extensions read it.
    """
    layout = {"course": base / "course", "exchange": base / "exchange", "home": base / "home"}
    for folder in layout.values():
        folder.mkdir(parents=True, exist_ok=True)
    settings = (f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
                f"c.Exchange.root = {str(layout['exchange'])!r}\n")
    course_root = f"c.CourseDirectory.root = {str(layout['course'])!r}\n"
    (layout["course"] / "nbgrader_config.py").write_text(settings + course_root)
    (layout["home"] / "nbgrader_config.py").write_text(settings)
    return layout


def release_assignments(layout: dict, repo_course: Path | None = None) -> list[str]:
    """Generate and release the demo assignment (plus ``repo_course/source/*``) with nbgrader's Python API."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    course = layout["course"]
    write_notebook(demo_source_notebook(), course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    names = [ASSIGNMENT]
    if repo_course is not None and (repo_course / "source").is_dir():
        for src in sorted(p for p in (repo_course / "source").iterdir() if p.is_dir() and any(p.glob("*.ipynb"))):
            shutil.copytree(src, course / "source" / src.name, dirs_exist_ok=True)
            names.append(src.name)
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = COURSE_ID
    config.Exchange.root = str(layout["exchange"])
    api = NbGraderAPI(config=config)
    for name in names:
        for step in (api.generate_assignment, api.release_assignment):
            result = step(name)
            if not result["success"]:
                detail = result.get("error") or result.get("log")
                raise RuntimeError(f"nbgrader {step.__name__}({name!r}) failed:\n{detail}")
    return names
