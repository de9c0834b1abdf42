"""The course's editions in other languages (llmkit/i18n, course/locale).

Every edition with a catalog builds from the English sources; its code cells, grade ids and points
are the English ones; its markdown has no English left (a function-word language check, validated
on the English itself); ``translate`` marks an edited paragraph fuzzy and keeps every other
translation; the grading ``_()`` and the widget labels find their translations; and ``nbgrader
validate`` passes on a notebook of each edition. Texts the English gained since the catalog was last
translated are not failures: the build reports them, and so do these tests, as warnings.
"""

import io
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

from llmkit.i18n import catalog as cat
from llmkit.i18n import runtime
from llmkit.i18n.edition import base_assignment, build_edition, edition_name, edition_root
from llmkit.i18n.langcheck import english_words, looks_english
from llmkit.i18n.units import apply_code, code_skeleton, markdown_units

COURSE = Path(__file__).resolve().parent.parent / "course"
LANGS = cat.catalog_languages(COURSE)
ENGLISH = cat.english_notebooks(COURSE)


def copy_course(dest: Path) -> Path:
    shutil.copy(COURSE / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(COURSE / "source", dest / "source")
    shutil.copytree(COURSE / "locale", dest / "locale")
    return dest


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """Every edition built once, in a copy of the course: {lang: EditionReport}, and the copy's root."""
    root = copy_course(tmp_path_factory.mktemp("course"))
    reports = {lang: build_edition(root, lang) for lang in LANGS}
    for lang, report in reports.items():
        if report.gaps:  # the English changed since the last translation: visible, not fatal
            warnings.warn(f"{report.summary()}: " + "; ".join(str(g) for g in report.gaps[:5]))
    return root, reports


def edition_notebook(root: Path, english: Path, lang: str) -> Path:
    name = edition_name(english.parent.name, lang)
    return edition_root(root, lang) / name / f"{edition_name(english.stem, lang)}.ipynb"


def pairs(root: Path, lang: str):
    for english in ENGLISH:
        yield (english.parent.name, nbformat.read(english, as_version=4),
               nbformat.read(edition_notebook(root, english, lang), as_version=4))


def test_spanish_catalog_exists():
    assert "es" in LANGS


@pytest.mark.parametrize("lang", LANGS)
def test_every_edition_builds(editions, lang):
    root, reports = editions
    assert reports[lang].written == [edition_name(p.parent.name, lang) for p in ENGLISH]
    for english in ENGLISH:
        assert edition_notebook(root, english, lang).is_file()


@pytest.mark.parametrize("lang", LANGS)
def test_code_grade_ids_and_points_equal_the_english(editions, lang):
    root, _ = editions
    for name, en, ed in pairs(root, lang):
        assert [c.cell_type for c in ed.cells] == [c.cell_type for c in en.cells], name
        for i, (a, b) in enumerate(zip(en.cells, ed.cells)):
            assert b.metadata.get("nbgrader") == a.metadata.get("nbgrader"), f"{name} cell {i + 1}"
            if a.cell_type != "code":
                continue
            if cat.is_solution(a):
                assert b.source == a.source, f"{name} cell {i + 1}: a solution cell changed"
            else:  # only comments and message strings may differ
                assert code_skeleton(b.source) == code_skeleton(a.source), f"{name} cell {i + 1}"


@pytest.mark.parametrize("lang", LANGS)
def test_markdown_has_no_english_left(editions, lang):
    root, reports = editions
    left = {(g.assignment, g.cell) for g in reports[lang].gaps if g.kind == "markdown"}
    english_left = []
    for name, en, ed in pairs(root, lang):
        for i, (a, b) in enumerate(zip(en.cells, ed.cells)):
            if a.cell_type != "markdown" or (name, i + 1) in left:
                continue
            untouched = set(markdown_units(a.source))
            for paragraph in markdown_units(b.source):
                # The language check; a short heading with no function word is caught by being unchanged.
                if looks_english(paragraph, lang) or paragraph in untouched and english_words(paragraph)[1] >= 2:
                    english_left.append(f"{name} cell {i + 1}: {paragraph[:80]!r}")
    assert not english_left, "\n".join(english_left)


def test_the_language_check_recognises_english():
    """The check must see English where it is: nearly every English paragraph of some length."""
    paragraphs = [p for nb in ENGLISH for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "markdown"
                  for p in markdown_units(c.source) if len(p.split()) >= 12]
    for lang in ("es", "af", "zh-TW"):
        found = sum(looks_english(p, lang) for p in paragraphs)
        assert found >= 0.95 * len(paragraphs), (lang, found, len(paragraphs))


# ------------------------------------------------------------------ the translator's workflow


def _tiny_course(root: Path, paragraphs: list[str], test_source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("\n\n".join(paragraphs), metadata={"nbgrader": {
                    "grade": False, "grade_id": "intro", "locked": True, "schema_version": 3, "solution": False}}),
                nbformat.v4.new_code_cell(test_source, metadata={"nbgrader": {
                    "grade": True, "grade_id": "t1", "locked": True, "points": 1, "schema_version": 3,
                    "solution": False}})]
    folder = root / "source" / "01-tiny"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "01-tiny.ipynb")
    return root


def test_translate_marks_only_the_edited_paragraph_fuzzy(tmp_path):
    test = ('# Checks the answer.\nx = 41 + 1\nassert x == 42, f"expected 42, got {x}"\n'
            'print("looks right")\n')
    _tiny_course(tmp_path, ["# The title", "The first paragraph says one thing.",
                            "The second paragraph says another thing."], test)
    cat.update(tmp_path, ["es"])
    po = cat.read(cat.po_path(tmp_path, "es"))
    assert len([m for m in po if m.context == "01-tiny"]) == 6
    spanish = {"# The title": "# El título", "The first paragraph says one thing.": "El primer párrafo dice una cosa.",
               "The second paragraph says another thing.": "El segundo párrafo dice otra cosa.",
               "Checks the answer.": "Comprueba la respuesta.", "expected 42, got {x}": "se esperaba 42; salió {x}",
               "looks right": 'parece "correcto"'}  # the quotes end the string early: must be refused
    for message in po:
        if message.context == "01-tiny":
            message.string = spanish[message.id]
    cat.write_if_changed(cat.po_path(tmp_path, "es"), po)

    report = build_edition(tmp_path, "es")
    nb = nbformat.read(edition_root(tmp_path, "es") / "01-tiny-es" / "01-tiny-es.ipynb", as_version=4)
    assert nb.cells[0].source == "# El título\n\nEl primer párrafo dice una cosa.\n\nEl segundo párrafo dice otra cosa."
    assert nb.cells[1].source == ('# Comprueba la respuesta.\nx = 41 + 1\nassert x == 42, f"se esperaba 42; salió {x}"\n'
                                  'print("looks right")\n')
    assert [(g.cell, g.state) for g in report.gaps] == [(2, "breaks the code")]

    # The English changes in one paragraph: one fuzzy entry, the rest keeps its translation.
    _tiny_course(tmp_path, ["# The title", "The first paragraph now says something else.",
                            "The second paragraph says another thing."], test)
    cat.update(tmp_path, ["es"])
    po = [m for m in cat.read(cat.po_path(tmp_path, "es")) if m.context == "01-tiny"]
    assert (sum(not m.fuzzy and bool(m.string) for m in po), sum(m.fuzzy for m in po)) == (5, 1)
    fuzzy = [m for m in po if m.fuzzy]
    assert [(m.id, m.string) for m in fuzzy] == [("The first paragraph now says something else.",
                                                  "El primer párrafo dice una cosa.")]
    report = build_edition(tmp_path, "es")
    assert [(g.cell, g.kind, g.state) for g in report.gaps if g.kind == "markdown"] == [(1, "markdown", "fuzzy")]
    nb = nbformat.read(edition_root(tmp_path, "es") / "01-tiny-es" / "01-tiny-es.ipynb", as_version=4)
    assert "The first paragraph now says something else." in nb.cells[0].source  # a fuzzy draft is never shown


def test_a_long_old_english_survives_every_update_unchanged():
    """A fuzzy entry's old English (``#|``, wrapped over several lines) reads back exactly, update after update."""
    from babel.messages.catalog import Catalog

    old = ('The old paragraph, long enough to wrap past the catalog\'s hundred-character lines, with "quotes",\n'
           'a second line, a backslash \\ and the given code that a learner fills in.  Two spaces above.')
    po = Catalog(locale="es")
    po.add("The new paragraph.", "El párrafo.", flags={"fuzzy"}, previous_id=[old], context="01-tiny",
           user_comments=["a translator's note"])
    pot = Catalog()
    pot.add("The new paragraph.", context="01-tiny")
    first = cat.dump(po)
    for _ in range(3):
        po = cat.merge(cat.read_po(io.BytesIO(cat.dump(po))), pot)
    (entry,) = [m for m in po if m.id]
    assert entry.previous_id == [old]
    assert entry.user_comments == ["a translator's note"]  # no stray pieces of the "#|" lines
    assert cat.dump(po).split(b"\n\n")[1:] == first.split(b"\n\n")[1:]  # byte-identical after the header


def test_a_translation_that_changes_a_placeholder_is_refused():
    source = 'assert ok, f"expected {want}, got {got}"\n'
    text, broken = apply_code(source, lambda m: "se esperaba {want}, salió {otra}")
    assert text == source and broken == ["expected {want}, got {got}"]
    text, broken = apply_code(source, lambda m: "salió {got}, se esperaba {want}")  # reordered fields are fine
    assert broken == [] and code_skeleton(text) == code_skeleton(source)


# ------------------------------------------------------------------ run time: grading and widgets


def test_grading_messages_are_looked_up_by_their_english(tmp_path, monkeypatch):
    from tests.grading_helpers import install_grading_catalog

    install_grading_catalog(tmp_path, monkeypatch, {
        "the mask is missing: token {i} sees token {j}": "falta la máscara: el token {i} ve el token {j}"})
    message = "the mask is missing: token {i} sees token {j}"
    assert runtime._(message).format(i=1, j=2) == message.format(i=1, j=2)  # no language: English
    with runtime.language(runtime.language_of("04-attention-es")):
        assert runtime._(message).format(i=1, j=2) == "falta la máscara: el token 1 ve el token 2"
        assert runtime._("a message nobody translated") == "a message nobody translated"
    assert runtime.translator("es")(message).startswith("falta")
    assert runtime.N_(message) is message
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ada/04-attention-es/04-attention-es.ipynb")
    assert runtime.current_language() == "es"


def test_edition_names():
    assert base_assignment("04-attention-es") == ("04-attention", "es")
    assert base_assignment("09-instruction-finetuning-zh-TW") == ("09-instruction-finetuning", "zh-TW")
    assert base_assignment("04-attention") == ("04-attention", None)
    assert base_assignment("02-data-sampling") == ("02-data-sampling", None)


def test_widget_labels_are_translated(monkeypatch):
    monkeypatch.setenv("LLMKIT_LOCALE_DIR", str(COURSE / "locale"))
    runtime._messages.cache_clear()
    assert runtime.translate_label("layer 2, head 1 (mha)", "es") == "capa 2, cabeza 1 (mha)"
    assert runtime.translate_label("temperature", "es") == "temperatura"
    assert runtime.translate_label("something else", "es") == "something else"
    import ipywidgets as widgets  # a dependency of the kit: missing, this test fails rather than skips
    box = widgets.VBox([widgets.IntSlider(description="temperature"), widgets.Text(description="prompt")])
    runtime.localize_widget(box, "es")
    assert [w.description for w in box.children] == ["temperatura", "prompt"]


def test_the_kits_widgets_speak_the_notebooks_language(monkeypatch):
    """A kernel of an edition's notebook (Jupyter names it in JPY_SESSION_NAME) builds Spanish widgets and plots."""
    import ipywidgets  # noqa: F401 - a dependency of the kit: missing, this test fails rather than skips
    from llmkit.widgets import tokenizer_explorer
    from llmkit.widgets._display import figure_png, new_figure

    monkeypatch.setenv("LLMKIT_LOCALE_DIR", str(COURSE / "locale"))
    monkeypatch.delenv("LLMKIT_LANG", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/student/01-tokenization-es/01-tokenization-es.ipynb")
    runtime._messages.cache_clear()
    explorer = tokenizer_explorer("Hello", tokenizers=["char"])
    explorer.ui
    assert explorer.controls["text"].description == "Texto"
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0], label="train (batch)")
    ax.set_xlabel("optimizer steps")
    ax.legend()
    figure_png(fig)
    assert ax.get_xlabel() == "pasos del optimizador"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["entrenamiento (lote)"]
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/student/01-tokenization/01-tokenization.ipynb")
    english = tokenizer_explorer("Hello", tokenizers=["char"])
    english.ui
    assert english.controls["text"].description == "Text"


def test_the_widget_labels_are_in_the_template():
    labels = {e.msgid for e in cat.widget_entries()}
    assert {"temperature", "layer {layer}, head {head} ({name})", "cross-entropy loss", "validation loss",
            "{family}: yours beside the reference"} <= labels  # try_component's curves too


# ------------------------------------------------------------------ nbgrader


@pytest.fixture(scope="module")
def validated_editions(editions):
    """``nbgrader validate`` on 04-attention in every language, two at a time (one thread each)."""
    from concurrent.futures import ThreadPoolExecutor

    root, _ = editions
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(lang):
        notebook = edition_root(root, lang) / f"04-attention-{lang}" / f"04-attention-{lang}.ipynb"
        return lang, subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(notebook)], cwd=root,
                                    capture_output=True, text=True, timeout=900, env=env)

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, LANGS))


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_nbgrader_validate_passes_on_an_edition_notebook(validated_editions, lang):
    result = validated_editions[lang]
    assert "Success! Your notebook passes all the tests." in result.stdout, (result.stdout + result.stderr)[-3000:]


@pytest.mark.slow
def test_build_lang_generates_the_edition_as_its_own_assignment(tmp_path):
    root = copy_course(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # alembic
    result = subprocess.run([sys.executable, "-m", "llmkit.cli", "course", "build", "--lang", "es", "04-attention",
                             "--no-validate", "--course", str(root)], capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "generated 1 assignments: 04-attention-es" in result.stdout
    released = (root / "release" / "04-attention-es" / "04-attention-es.ipynb").read_text(encoding="utf-8")
    assert "Etapa 4" in released and "BEGIN SOLUTION" not in released


def test_a_mistakes_output_is_data_not_a_message():
    """``mistake(hint, output)``: translating the output would stop the check from recognising it."""
    from llmkit.i18n.units import message_nodes
    import ast

    tree = ast.parse('expect_equal(x, y, what="the ids", mistakes=[mistake("the space is lost", "a , b .")], '
                     'hint="keep the space")')
    texts = {node.value for node in message_nodes(tree)}
    assert texts == {"the ids", "the space is lost", "keep the space"}
