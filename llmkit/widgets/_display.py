"""What every llmkit widget shares: the widget-or-static rule, lazy UI, and figure -> PNG helpers.

The rule (``static_reason()``), checked each time a widget is displayed:

1. ``LLMKIT_NO_WIDGETS`` set to 1/true/yes/on        -> static (the explicit switch);
2. ``NBGRADER_EXECUTION`` set (nbgrader autograde/validate) -> static;
3. ipywidgets not importable                          -> static;
4. no Jupyter kernel (plain Python, pytest, terminal IPython: ``get_ipython()`` is None or has no
   ``kernel``)                                        -> static;
5. otherwise the ipywidgets view, and the output bundle *also* carries the static HTML/PNG, so a
   front end without the widget manager (nbconvert, GitHub, an old Lab) still shows a figure.

Graded runs therefore never depend on a browser: nbgrader sets ``NBGRADER_EXECUTION`` itself, and
``LLMKIT_NO_WIDGETS=1 jupyter nbconvert --execute ...`` does the same anywhere else.
"""

from __future__ import annotations

import base64
import io
import os

NO_WIDGETS_ENV = "LLMKIT_NO_WIDGETS"
_TRUE = {"1", "true", "yes", "on"}


def static_reason() -> str | None:
    """Why a widget would be shown statically right now, or None when the ipywidgets view is used."""
    if os.environ.get(NO_WIDGETS_ENV, "").strip().lower() in _TRUE:
        return f"{NO_WIDGETS_ENV} is set"
    if os.environ.get("NBGRADER_EXECUTION"):
        return f"nbgrader is running the notebook ({os.environ['NBGRADER_EXECUTION']})"
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return "ipywidgets is not installed (pip install ipywidgets)"
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return "no Jupyter kernel with comms (plain Python or terminal IPython)"
    return None


def widgets_enabled() -> bool:
    return static_reason() is None


def new_figure(width: float = 6.0, height: float = 4.0, dpi: int = 100):
    """A matplotlib Figure that does not touch pyplot's global state (works with any backend)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


def figure_png(fig) -> bytes:
    """The figure as PNG bytes, its titles, axes and legend in the edition's language (llmkit.i18n)."""
    from llmkit.i18n import localize_figure

    localize_figure(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def png_img_tag(png: bytes, alt: str = "") -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


class LLMKitWidget:
    """Base class: state -> output methods, a lazily built ipywidgets ``ui``, and a static fallback.

    Subclasses implement ``_build_ui()`` (returning the root widget, storing its inputs in
    ``self.controls``) and at least one of ``_repr_html_``/``_repr_png_`` for the static view.
    """

    css_class = "llmkit-widget"

    def __init__(self):
        self._ui = None
        self.controls: dict = {}
        self._shown = False

    @property
    def ui(self):
        """The ipywidgets view, built on first use (building needs no kernel, so tests can drive it)."""
        if self._ui is None:
            from llmkit.i18n import localize_widget

            self._ui = localize_widget(self._build_ui())  # labels in the edition's language, if any
            self._ui.add_class("llmkit-widget")
            self._ui.add_class(self.css_class)
        return self._ui

    def _build_ui(self):
        raise NotImplementedError

    def _observe(self, callback, *names):
        for name in names:
            self.controls[name].observe(callback, names="value")

    def _repr_mimebundle_(self, include=None, exclude=None):
        if not widgets_enabled():
            return None  # IPython then uses _repr_html_ / _repr_png_: the static fallback
        self._shown = True
        bundle = dict(self.ui._repr_mimebundle_())
        bundle["text/plain"] = repr(self)  # not the widget tree's long repr
        return bundle

    def show(self):
        """Display now (the ipywidgets view or, per the rule above, the static fallback)."""
        from IPython.display import display

        display(self)
        return self
