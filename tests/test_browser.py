"""JupyterLab in a real browser: a released nbgrader assignment whose widgets render and react.

The test starts JupyterLab on 127.0.0.1 (random port, random token) in a temporary student home,
releases a tiny assignment (plus every assignment of ``course/source/``) to a temporary exchange with
nbgrader's Python API, and drives Debian's Chromium through Playwright: assignment list, fetch,
Run All, widgets rendered, a slider moved, the answer typed, nbgrader's Validate. A second server in
the instructor's course folder opens nbgrader's formgrader, which must list every released
assignment. Screenshots go to ``test-artifacts/screenshots/``. Two more tests show that the render
check fails when a widget does not render (its build raises; the widget manager is missing).
The course loop runs fetch, a visible failure, Validate, submit, ``llmkit course grade`` and Fetch
Feedback on two real assignments; the last test opens the Spanish edition of 01 in JupyterLab's
Spanish interface (the language pack) and drives its tokenizer explorer.

Needs ``apt-get install -y chromium`` and ``pip install playwright`` (never ``playwright install``).
Without them the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.browser import loop
from tests.browser import notebooks as nb
from tests.browser import support
from tests.grading_sim import require_bubblewrap

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "test-artifacts" / "screenshots"
BROKEN = "broken-widgets.ipynb"
VIEWPORT = {"width": 1400, "height": 1000}


class Lab:
    def __init__(self, url, token, browser, layout, assignments, hold):
        self.url, self.token, self.browser = url, token, browser
        self.home, self.course, self.assignments, self.hold = layout["home"], layout["course"], assignments, hold

    @contextmanager
    def page(self, name, block_widget_manager=False):
        """A fresh browser context and page; on failure a screenshot ``FAILED-<name>.png`` is kept."""
        context = self.browser.new_context(viewport=VIEWPORT)
        if block_widget_manager:  # as if the ipywidgets front-end extension were not installed
            context.route("**/lab/extensions/@jupyter-widgets/jupyterlab-manager/**", lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        except BaseException:
            support.screenshot(page, SHOTS / f"FAILED-{name}.png")
            raise
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for every test of this module (Playwright's sync API runs once per thread)."""
    support.require_browser_stack()  # skip, or fail under CI=true, when a piece is missing
    from playwright.sync_api import sync_playwright

    for stale in SHOTS.glob("FAILED-*.png"):  # from an earlier run
        stale.unlink()
    with sync_playwright() as playwright:
        chromium = support.launch_browser(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    base = tmp_path_factory.mktemp("jupyterlab")
    layout = nb.course_layout(base)
    nb.write_notebook(nb.broken_notebook(), layout["home"] / BROKEN)
    hold = base / "dashboard-photographed"
    env = {nb.HOLD_ENV: str(hold), "LLMKIT_LOAD_PLUGINS": os.environ.get("LLMKIT_LOAD_PLUGINS", "")}
    with ThreadPoolExecutor(1) as pool:
        released = pool.submit(nb.release_assignments, layout, REPO / "course")  # while JupyterLab starts
        with support.jupyterlab(layout["home"], base / "work", env) as (url, token):
            assignments = released.result()
            yield Lab(url, token, browser, layout, assignments, hold)


def _widget(page, index, css_class, timeout=60):
    return support.wait_for_widget(page, index, css_class, timeout,
                                   failure_shot=SHOTS / f"FAILED-{css_class}-cell{index}.png")


def _wait_text(locator, predicate, timeout=60.0, what="text"):
    """Poll the element's DOM text (textContent: off-screen cells are not laid out, so no innerText)."""
    deadline = time.monotonic() + timeout
    text = None
    while time.monotonic() < deadline:
        text = locator.text_content()
        if predicate(text):
            return text
        time.sleep(0.1)
    raise TimeoutError(f"{what} never satisfied the check; last seen: {text!r}")


def _run_all(page, menu, wait=60.0):
    """Run > Run All, clicked once more if the first code cell has not started after ``wait`` s.

    A Run All that reaches a kernel still connecting is dropped by the front end (seen on a loaded
    machine); a student would click again, and so does the test.
    """
    prompt = support.code_cell(page, 0).locator(".jp-InputArea-prompt")
    for attempt in range(2):
        support.menu_command(page, menu, "runmenu:run-all")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if (prompt.text_content() or "").strip() not in ("", "[ ]:"):
                return
            time.sleep(0.25)
    raise TimeoutError(f"Run All started no cell in {2 * wait:.0f} s")


def _image_loaded(view):
    img = view.locator("img").first
    img.wait_for(state="visible")
    deadline = time.monotonic() + 30
    while not img.evaluate("i => i.complete && i.naturalWidth > 0"):
        assert time.monotonic() < deadline, "the widget's image never loaded"
        time.sleep(0.1)


def test_released_assignment_runs_its_widgets_and_validates(lab):
    with lab.page("released-assignment-runs-its-widgets-and-validates") as page:
        support.open_lab(page, lab.url, lab.token)

        # nbgrader's assignment list: every released assignment, then fetch the demo.
        support.menu_command(page, "Nbgrader", "nbgrader:open-assignment-list")
        released = page.locator("#released_assignments_list .list_item")
        for name in lab.assignments:
            released.filter(has_text=name).first.wait_for()
        support.screenshot(page, SHOTS / "nbgrader-assignment-list.png")
        released.filter(has_text=nb.ASSIGNMENT).get_by_role("button", name="Fetch").click()
        page.locator("#fetched_assignments_list .list_item", has_text=nb.ASSIGNMENT).first.wait_for()
        assert (lab.home / nb.ASSIGNMENT / f"{nb.ASSIGNMENT}.ipynb").is_file()

        # Open the fetched (student) notebook from the list, then Run All from the menu.
        fetched = page.locator("#fetched_assignments_list")
        fetched.locator("a.assignment-notebooks-link", has_text=nb.ASSIGNMENT).click()
        fetched.locator(".nested_list_item a", has_text=nb.ASSIGNMENT).click()
        support.wait_notebook_ready(page)
        support.menu_command(page, "Run", "runmenu:run-all")

        explorer = _widget(page, 1, "llmkit-tokenizer-explorer", timeout=180)  # kernel start + imports
        panels = explorer.locator(".llmkit-tokenizer-panel")
        assert panels.count() == 3 and explorer.locator(".llmkit-token").count() > 10
        support.screenshot(explorer, SHOTS / "tokenizer-explorer.png")

        heatmap = _widget(page, 2, "llmkit-attention-heatmap", timeout=60)
        _image_loaded(heatmap)
        assert heatmap.locator("select").count() == 2  # layer and head dropdowns
        support.screenshot(heatmap, SHOTS / "attention-heatmap.png")

        # The dashboard while training runs: the demo cell pauses at HOLD_STEP until we have the picture.
        dashboard = _widget(page, 3, "llmkit-training-dashboard", timeout=90)
        # (the stats box records the step the plot was drawn at; the pause redraws it at HOLD_STEP)
        dashboard.locator(f".llmkit-stats[data-plot-step='{nb.HOLD_STEP}']").wait_for(timeout=120_000)
        assert dashboard.locator(".llmkit-stat[data-stat='step']").text_content().strip() == str(nb.HOLD_STEP)
        _image_loaded(dashboard)
        assert support.code_cell(page, 3).locator(".jp-InputArea-prompt").text_content().strip() == "[*]:", \
            "the training cell should still be running"
        dashboard.scroll_into_view_if_needed()
        support.screenshot(page, SHOTS / "training-dashboard-mid-run.png")
        lab.hold.write_text("photographed")
        support.wait_cell_done(page, 3, timeout=120)
        assert dashboard.locator(".llmkit-stat[data-stat='step']").text_content().strip() == "12"
        assert "sample after epoch" in dashboard.locator(".llmkit-sample").text_content()

        # Widgets react once the kernel is free (comm messages wait while a cell runs): the unanswered
        # question's NotImplementedError ends Run All.
        playground = _widget(page, 4, "llmkit-generation-playground", timeout=60)
        support.wait_cell_done(page, 5, timeout=60)
        # typing changes the tokens: the GPT-2 ids of "Hello world" are 15496, 995
        explorer.locator("textarea").fill("Hello world")
        gpt2_ids = explorer.locator(".llmkit-tokenizer-panel[data-tokenizer='gpt2'] .llmkit-ids")
        _wait_text(gpt2_ids, lambda t: t.strip() == "[15496, 995]", what="gpt2 ids after typing")

        # The playground reacts to the temperature slider; back at 0 the greedy text returns (seeded).
        output = playground.locator(".llmkit-generated")
        greedy = _wait_text(output, lambda t: len(t.strip()) > 3, what="first generation")
        slider = playground.locator(".widget-slider", has_text="temperature")
        handle = slider.locator(".noUi-handle").first
        handle.focus()
        for _ in range(8):
            handle.press("ArrowRight")
        _wait_text(slider.locator(".widget-readout"), lambda t: t.strip() == "0.80", what="temperature readout")
        sampled = _wait_text(output, lambda t: t != greedy, what="text at temperature 0.8")
        support.screenshot(playground, SHOTS / "generation-playground.png")
        handle.press("Home")
        _wait_text(slider.locator(".widget-readout"), lambda t: t.strip() == "0.00", what="temperature readout")
        assert _wait_text(output, lambda t: t == greedy, what="greedy text again") != sampled

        # Answer the question, then nbgrader's Validate (which runs the notebook without a browser).
        editor = support.code_cell(page, 5).locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(nb.SOLUTION)
        page.locator(".validate-button").first.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=180_000)
        _wait_text(dialog, lambda t: "Validating" not in t, timeout=180, what="validation dialog")
        support.screenshot(page, SHOTS / "nbgrader-validate.png")
        assert dialog.locator(".validation-success").count() == 1, dialog.text_content()
        assert "Success! Your notebook passes all the tests." in dialog.text_content()


def test_render_check_fails_when_the_widget_build_raises(lab):
    with lab.page("render-check-fails-when-the-widget-build-raises") as page:
        support.open_lab(page, lab.url, lab.token, BROKEN)
        support.menu_command(page, "Run", "runmenu:run-all")
        support.wait_cell_done(page, 0, timeout=120)
        with pytest.raises(TimeoutError, match="no rendered widget"):
            support.wait_for_widget(page, 0, "llmkit-attention-heatmap", timeout=5)
        assert "lacks W_query" in support.code_cell(page, 0).locator(".jp-OutputArea").text_content()
        support.screenshot(support.code_cell(page, 0), SHOTS / "broken-widget-build.png")


def test_render_check_fails_without_the_widget_manager(lab):
    with lab.page("render-check-fails-without-the-widget-manager", block_widget_manager=True) as page:
        support.open_lab(page, lab.url, lab.token, BROKEN)
        support.code_cell(page, 1).click()
        support.menu_command(page, "Run", "notebook:run-cell")  # only the healthy tokenizer explorer
        support.wait_cell_done(page, 1, timeout=120)
        with pytest.raises(TimeoutError, match="no rendered widget"):
            support.wait_for_widget(page, 1, "llmkit-tokenizer-explorer", timeout=5)
        # What the front end showed instead is the static fallback carried in the same output.
        fallback = support.code_cell(page, 1).locator(".jp-OutputArea .llmkit-tokenizer-panel")
        assert fallback.count() == 1 and re.search(r"\[15496, 995\]", fallback.text_content())
        support.screenshot(support.code_cell(page, 1), SHOTS / "no-widget-manager-fallback.png")


def test_formgrader_lists_every_released_assignment(lab):
    """The instructor's side: JupyterLab started in the course folder, Nbgrader > Formgrader."""
    with support.jupyterlab(lab.course, lab.course.parent / "instructor-work") as (url, token):
        with lab.page("formgrader-lists-every-released-assignment") as page:
            support.open_lab(page, url, token)
            support.menu_command(page, "Nbgrader", "nbgrader:open-formgrader")
            formgrader = page.frame_locator("#formgrader-iframe iframe")
            rows = formgrader.locator("tr", has=formgrader.locator("td.name"))
            for name in lab.assignments:
                row = rows.filter(has=formgrader.locator("td.name", has_text=name)).first
                row.wait_for()
                assert row.locator("td.status").text_content().strip() == "released", name
            assert rows.count() == len(lab.assignments)
            support.screenshot(page, SHOTS / "nbgrader-formgrader.png")


# ------------------------------------------------------------------ the whole course loop, as a student


@pytest.fixture(scope="module")
def course_loop(tmp_path_factory, browser):
    """The real course (04-attention and 01-tokenization built and released by the kit), a student home
    set up with ``llmkit course student-setup``, and JupyterLab running in that home."""
    require_bubblewrap()  # `llmkit course grade` runs student kernels in the sandbox
    base = tmp_path_factory.mktemp("course-loop")
    root = loop.new_course(base)
    home, work = base / "student", base / "student-jupyter"
    home.mkdir()
    loop.student_setup(root / "exchange", work / "config")
    with ThreadPoolExecutor(1) as pool:
        released = pool.submit(loop.build_and_release, root, list(loop.MISTAKES))  # while JupyterLab starts
        with support.jupyterlab(home, work, timeout=180) as (url, token):  # a busy CI machine is slow to start it
            released.result()
            yield Lab(url, token, browser, {"home": home, "course": root}, list(loop.MISTAKES), hold=None)


def _assignment_list(page):
    support.menu_command(page, "Nbgrader", "nbgrader:open-assignment-list")


def _item(page, section, assignment):
    return page.locator(f"#{section}_assignments_list .list_item", has_text=assignment).first


def _type_into(page, attempt, grade_id):
    editor = support.code_cell(page, attempt.code_index(grade_id)).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(attempt.answers[grade_id])


def _saved(path, text, timeout=30.0):
    """Wait until the notebook on disk has ``text`` in a cell (Validate and Submit read the file)."""
    import nbformat

    deadline = time.monotonic() + timeout
    while True:
        try:  # JupyterLab may be writing the file right now: an empty or partial file is read again
            if any(text in cell.source for cell in nbformat.read(path, 4).cells):
                return
        except Exception:  # noqa: BLE001 - nbformat's NotJSONError or a JSON error: not written yet
            pass
        assert time.monotonic() < deadline, f"{path.name} was not saved with the student's answer"
        time.sleep(0.2)


def _check(problems, ok, message):
    """A fact the loop must show: noted, and the loop goes on, so that one run reports every broken step."""
    if not ok:
        problems.append(message)


def _student_fails_validates_and_submits(page, lab, attempt, problems):
    """Fetch, answer with one mistake, see the visible failure, Validate, submit (Assignments tab)."""
    name = attempt.assignment
    _assignment_list(page)
    _item(page, "released", name).get_by_role("button", name="Fetch").click()
    fetched = _item(page, "fetched", name)
    fetched.wait_for()
    fetched.locator("a.assignment-notebooks-link").click()
    page.locator("#fetched_assignments_list .nested_list_item a", has_text=name).first.click()
    support.wait_notebook_ready(page)

    for grade_id in attempt.answers:
        _type_into(page, attempt, grade_id)
    page.keyboard.press("Control+s")
    _saved(lab.home / name / f"{name}.ipynb", attempt.answers[attempt.mistake["cell"]])
    support.menu_command(page, "Run", "runmenu:run-all")  # Run All stops at the first failing cell

    # The visible test of the mistaken exercise fails with one sentence: no traceback, no tensor dump.
    test_cell = support.code_cell(page, attempt.code_index(attempt.visible_test))
    error = test_cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").first
    error.wait_for(timeout=180_000)  # kernel start and imports
    text = error.text_content().strip()
    test_cell.scroll_into_view_if_needed()
    support.screenshot(page, SHOTS / f"loop-{name}-visible-failure.png")
    _check(problems, len(text.splitlines()) == 1, f"{name}: the visible failure is not one line:\n{text}")
    for dump in ("tensor(", "Traceback", "File \""):
        _check(problems, dump not in text, f"{name}: the visible failure shows {dump!r}: {text}")

    # Validate: a summary that names the exercise, not a wall of tracebacks.
    page.locator(f"{support.NOTEBOOK} .validate-button").first.click()  # this notebook's toolbar
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=60_000)
    summary = _wait_text(dialog, lambda t: "Validating" not in t, timeout=300, what="validation dialog")
    support.screenshot(page, SHOTS / f"loop-{name}-validate.png")
    title = attempt.title.replace("`", "")  # the summary shows the heading as plain words, without code marks
    _check(problems, title in summary, f"{name}: Validate does not name {title!r}:\n{summary[:1500]}")
    for dump in ("tensor(", "Traceback"):
        _check(problems, dump not in summary, f"{name}: Validate shows {dump!r}:\n{summary[:1500]}")
    dialog.locator(".jp-Dialog-button").last.click()
    dialog.wait_for(state="hidden")

    _assignment_list(page)
    _item(page, "fetched", name).get_by_role("button", name="Submit").click()
    _item(page, "submitted", name).wait_for()


def _student_reads_feedback(page, lab, attempt, problems):
    """Fetch Feedback, open the page from the Assignments tab, read its top."""
    name = attempt.assignment
    _assignment_list(page)  # the student may be looking at a notebook: bring the Assignments tab forward
    page.locator("#refresh_assignments_list").click()
    _item(page, "submitted", name).get_by_role("button", name="Fetch Feedback").click()
    view = _item(page, "submitted", name).locator("a", has_text="view feedback")
    view.wait_for(timeout=60_000)
    pages = list((lab.home / name / "feedback").glob(f"*/{name}.html"))
    assert len(pages) == 1, list((lab.home / name).rglob("*.html"))
    html = pages[0].read_text()

    view.click()  # the file browser at the feedback folder; the student opens the page there
    page.locator(".jp-DirListing-item", has_text=f"{name}.html").first.dblclick()
    body = page.locator(".jp-HTMLViewer iframe").last.content_frame.locator("body")  # the page just opened
    _wait_text(body, lambda t: attempt.mistake["feedback"] in (t or ""), what="feedback page")
    support.screenshot(page, SHOTS / f"loop-{name}-feedback.png")

    text = loop.page_text(html)
    diagnosis, first_code = text.find(attempt.mistake["feedback"]), text.find(attempt.first_code_line)
    _check(problems, 0 <= diagnosis and (first_code < 0 or diagnosis < first_code),
           f"{name}: the diagnosis {attempt.mistake['feedback']!r} is not above the notebook's code "
           f"(at {diagnosis}, code at {first_code})")
    for leak in ("Traceback", str(lab.course), "/work/", "site-packages", "llmkit_instructor/grading", "BEGIN HIDDEN TESTS"):
        _check(problems, leak not in text, f"{name}: the feedback shows {leak!r}")
    _check(problems, str(lab.course) not in html, f"{name}: the feedback's HTML holds the course path")
    shown = [line for line in attempt.reference_lines if line in text]
    _check(problems, not shown, f"{name}: the feedback shows reference code: {shown[:3]}")


def test_student_loop_fetch_mistake_validate_submit_grade_feedback(course_loop):
    """Two assignments: the student submits both with one mistake each; one `llmkit course grade`."""
    attempts = [loop.attempt(name) for name in course_loop.assignments]
    problems = []
    with course_loop.page("student-loop") as page:
        support.open_lab(page, course_loop.url, course_loop.token)
        for attempt in attempts:
            _student_fails_validates_and_submits(page, course_loop, attempt, problems)
        support.screenshot(page, SHOTS / "loop-submitted.png")

        graded = loop.llmkit_cli("course", "grade", "--course", str(course_loop.course))
        assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
        assert re.search(r"returned\s+2\b", graded.stdout), graded.stdout

        for attempt in attempts:
            _student_reads_feedback(page, course_loop, attempt, problems)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ an edition, with JupyterLab's language pack

EDITION_OF, EDITION_LANG, EDITION_LOCALE = "01-tokenization", "es", "es_ES"


def _solved_edition(base: Path, english: str, lang: str):
    """The released notebook of ``english``'s edition in ``lang``, built by the kit, with the solutions filled in."""
    import nbformat

    from llmkit_instructor.editions import build as build_editions
    from tests import course_sim

    root = course_sim.copy_course(base / "course")
    shutil.copytree(course_sim.COURSE / "locale", root / "locale", dirs_exist_ok=True)
    build_editions(root, lang, [english], False)
    edition = f"{english}-{lang}"
    source = nbformat.read(next((root / f"source-{lang}" / edition).glob("*.ipynb")), 4)
    release = nbformat.read(next((root / "release" / edition).glob("*.ipynb")), 4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells if "nbgrader" in c.metadata}
    for cell in release.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
    return edition, release


@pytest.fixture(scope="module")
def edition_lab(tmp_path_factory, browser):
    """A student's JupyterLab set to Spanish (the language pack) with the solved Spanish edition of 01 in its home."""
    support.require_language_pack(EDITION_LOCALE)
    base = tmp_path_factory.mktemp("edition")
    edition, notebook = _solved_edition(base, EDITION_OF, EDITION_LANG)
    home = base / "student"
    nb.write_notebook(notebook, home / edition / f"{edition}.ipynb")
    settings = {("translation-extension", "plugin"): {"locale": EDITION_LOCALE}}
    with support.jupyterlab(home, base / "work", settings=settings, timeout=120) as (url, token):
        yield Lab(url, token, browser, {"home": home, "course": base / "course"}, [edition], hold=None), notebook


def test_an_edition_opens_in_its_language_with_working_widgets(edition_lab):
    """JupyterLab's menus (the language pack), the notebook's prose and the kit's widget speak Spanish; the widget works."""
    from llmkit.i18n import langcheck

    lab, notebook = edition_lab
    edition = lab.assignments[0]
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    explorer_index = next(i for i, c in enumerate(code_cells) if "tokenizer_explorer(" in c.source)
    with lab.page("edition-opens-in-its-language") as page:
        support.open_lab(page, lab.url, lab.token, f"{edition}/{edition}.ipynb", timeout=120)

        # JupyterLab's own interface comes from the language pack: "File", "Edit" and "Help" are "Archivo",
        # "Editar" and "Ayuda" (the pack may lag behind JupyterLab on a few labels, e.g. "Run").
        menus = page.locator(".lm-MenuBar-content")
        _wait_text(menus, lambda t: all(word in t for word in ("Archivo", "Editar", "Ayuda")),
                   what="JupyterLab's menu bar")
        assert not {"File", "Edit", "Help"} & set(re.findall(r"[A-Za-z]+", menus.text_content()))

        # The notebook's prose is the edition's: the rendered introduction reads as Spanish, not English.
        intro = page.locator(f"{support.NOTEBOOK} .jp-MarkdownCell .jp-RenderedMarkdown").first
        text = _wait_text(intro, lambda t: len((t or "").split()) > 20, what="the introduction")
        heading = notebook.cells[0].source.splitlines()[0].lstrip("# ").strip()
        assert heading in text, (heading, text[:300])
        assert not langcheck.looks_english(text, EDITION_LANG), text[:500]
        assert langcheck.native_words(text, EDITION_LANG) >= 10, text[:500]
        support.screenshot(page, SHOTS / f"edition-{EDITION_LANG}-notebook.png")

        # Run All: the solved notebook runs to its tokenizer explorer, whose label is in Spanish and which reacts.
        _run_all(page, re.compile(r"^(Ejecutar|Run)$"))
        explorer = _widget(page, explorer_index, "llmkit-tokenizer-explorer", timeout=300)
        assert explorer.locator(".widget-label", has_text="Texto").count() == 1, explorer.text_content()[:300]
        assert explorer.locator(".llmkit-tokenizer-panel").count() == 3
        support.wait_cell_done(page, explorer_index, timeout=120)
        explorer.locator("textarea").fill("Hello world")
        gpt2_ids = explorer.locator(".llmkit-tokenizer-panel[data-tokenizer='GPT-2 BPE'] .llmkit-ids")
        _wait_text(gpt2_ids, lambda t: t.strip() == "[15496, 995]", what="GPT-2 ids after typing")
        explorer.scroll_into_view_if_needed()
        support.screenshot(page, SHOTS / f"edition-{EDITION_LANG}-tokenizer-explorer.png")
