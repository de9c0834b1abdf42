"""Helpers for the JupyterLab browser test: find the browser, run a JupyterLab server, drive its page.

Nothing here downloads anything: the browser is Debian's Chromium (``/usr/bin/chromium``, override
with ``LLMKIT_CHROMIUM``) driven by Playwright for Python; ``playwright install`` is never needed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the visible tab


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(ok: bool, message: str) -> None:
    """Missing tooling: a failure in CI (CI=true), a skip on a developer's machine."""
    if not ok:
        if in_ci():
            pytest.fail(message + " (CI=true: the browser test must run here)", pytrace=False)
        pytest.skip(message)


def require_browser_stack() -> str:
    """Chromium, Playwright, JupyterLab, ipywidgets and nbgrader, or skip/fail (see ``require``); the browser path."""
    import importlib.util

    for module, install in (("jupyterlab", "jupyterlab"), ("ipywidgets", "ipywidgets"), ("nbgrader", "nbgrader"),
                            ("nbformat", "nbformat")):
        require(importlib.util.find_spec(module) is not None, f"{module} is missing; `pip install {install}`")
    return chromium_path()


def chromium_path() -> str:
    path = os.environ.get("LLMKIT_CHROMIUM", "/usr/bin/chromium")
    require(Path(path).is_file() and os.access(path, os.X_OK),
            f"Chromium not found at {path}; install it with `apt-get install -y chromium` (or set LLMKIT_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "Playwright for Python is missing; `pip install playwright` (never `playwright install`)")
    return path


def require_language_pack(locale: str) -> None:
    """JupyterLab's language pack for ``locale`` (es_ES, zh_TW): the course-i18n extra, part of .[dev]."""
    import importlib.metadata

    package = f"jupyterlab-language-pack-{locale.replace('_', '-')}"
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        require(False, f"{package} is missing; `pip install -e \".[course-i18n]\"`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAB_SETTINGS = {
    # no news/update toasts over the screenshots
    ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True},
    # start the notebook's own kernel (python3) without asking
    ("notebook-extension", "tracker"): {"autoStartDefaultKernel": True},
}


def _lab_settings(settings_dir: Path, extra: dict | None = None) -> None:
    for (extension, plugin), values in {**LAB_SETTINGS, **(extra or {})}.items():
        folder = settings_dir / "@jupyterlab" / extension
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))


@contextmanager
def jupyterlab(root: Path, work: Path, env_extra: dict | None = None, timeout: float = 60.0,
               settings: dict | None = None):
    """Run ``jupyter lab`` on 127.0.0.1 at a free port with a random token; yield (base_url, token).

    ``settings`` adds user settings to ``LAB_SETTINGS`` (e.g. ``{("translation-extension", "plugin"):
    {"locale": "es_ES"}}``: JupyterLab's menus in Spanish, from the language pack).

    Config, data, runtime and settings folders live under ``work`` so the user's own Jupyter setup
    neither leaks in nor gets touched. The server's working directory is ``root`` (nbgrader reads
    ``nbgrader_config.py`` from there).
    """
    port, token = free_port(), secrets.token_hex(16)
    for name in ("config", "data", "runtime", "settings", "workspaces", "ipython"):
        (work / name).mkdir(parents=True, exist_ok=True)
    _lab_settings(work / "settings", settings)
    dropped = {"LLMKIT_NO_WIDGETS", "NBGRADER_EXECUTION", "JPY_SESSION_NAME"}  # the kernels must show widgets
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_DATA_DIR": str(work / "data"),
                "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "IPYTHONDIR": str(work / "ipython"),
                "JUPYTER_PLATFORM_DIRS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(env_extra or {})
    log = open(work / "jupyterlab.log", "wb")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI runners often run as root
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}; see {work / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s; see {work / 'jupyterlab.log'}")
            time.sleep(0.25)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------------------------------------- page


def screenshot(target, path: Path) -> Path:
    """PNG of a page or an element (Locator), into test-artifacts/screenshots/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(path))
    return path


def open_lab(page, base: str, token: str, path: str = "", timeout: float = 60.0):
    """Open JupyterLab (on a notebook when ``path`` is given) and wait until the shell is up.

    Each call uses a new, empty workspace, so tabs left open by an earlier page are not restored
    (and "Run All" cannot land on another notebook).
    """
    workspace = f"test-{secrets.token_hex(4)}"
    url = f"{base}/lab/workspaces/{workspace}" + (f"/tree/{path}" if path else "") + f"?token={token}"
    page.goto(url)
    page.wait_for_selector("#jp-main-dock-panel", timeout=timeout * 1000)
    if path.endswith(".ipynb"):
        wait_notebook_ready(page, timeout)


def wait_notebook_ready(page, timeout: float = 60.0):
    """The visible notebook has its cells and an idle kernel."""
    page.wait_for_selector(f"{NOTEBOOK} .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    wait_kernel_idle(page, timeout)
    accept_kernel_dialog(page)


def accept_kernel_dialog(page, wait: float = 1.0) -> bool:
    """Accept a "Select Kernel" dialog (default: the notebook's python3) if one shows within ``wait`` s."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(state="visible", timeout=wait * 1000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: no dialog, nothing to do
        return False
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="hidden")
    return True


def wait_kernel_idle(page, timeout: float = 60.0):
    page.wait_for_selector(f"{NOTEBOOK} .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           state="attached", timeout=timeout * 1000)


def menu_command(page, menu: str, command: str):
    """Click a top menu (e.g. "Run") and then the item bound to ``command`` (e.g. notebook:run-all-cells)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(f".lm-Menu-item[data-command='{command}']").first.click()


def code_cell(page, index: int):
    """The index-th code cell of the open notebook (0-based, markdown cells not counted)."""
    return page.locator(f"{NOTEBOOK} .jp-Notebook .jp-CodeCell").nth(index)


def wait_cell_done(page, index: int, timeout: float = 120.0):
    """Wait until the cell shows an execution count ("[3]:"), i.e. it ran and finished."""
    prompt = code_cell(page, index).locator(".jp-InputArea-prompt")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (prompt.text_content() or "").strip()  # textContent: off-screen cells are not laid out
        if text.startswith("[") and any(ch.isdigit() for ch in text):
            return text
        time.sleep(0.1)
    raise TimeoutError(f"code cell {index} did not finish within {timeout:.0f} s (prompt {prompt.text_content()!r})")


def wait_for_widget(page, index: int, css_class: str, timeout: float = 30.0, failure_shot: Path | None = None):
    """The rendered ipywidgets view (``.lm-Widget.jupyter-widgets.<css_class>``) in code cell ``index``.

    A static fallback (HTML/PNG), an error, "Loading widget..." or a view the widget manager failed to
    create do not count. Raises the builtin TimeoutError with the cell's output text otherwise (after
    saving a screenshot of the page to ``failure_shot`` when given).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    selector = f".jp-OutputArea-output .lm-Widget.jupyter-widgets.{css_class}"
    view = code_cell(page, index).locator(selector).first
    try:
        view.wait_for(state="visible", timeout=timeout * 1000)
    except PlaywrightTimeout:
        outputs = code_cell(page, index).locator(".jp-OutputArea")
        shown = (outputs.first.text_content() or "")[:400] if outputs.count() else "(no output)"
        dialogs = page.locator(".jp-Dialog")
        if dialogs.count():
            shown += f" [a dialog is open: {(dialogs.first.text_content() or '')[:200]!r}]"
        if failure_shot is not None:
            screenshot(page, failure_shot)
        raise TimeoutError(f"no rendered widget {selector!r} in code cell {index} after {timeout:.0f} s; "
                           f"the cell shows: {shown!r}") from None
    return view


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
