"""Editions of the course in other languages, from one English source and gettext catalogs.

    llmkit course translate [--lang es]     # English -> course/locale/course.pot -> <lang>/LC_MESSAGES/course.po
    llmkit course build --lang es           # catalog + English -> course/source-es/NN-name-es/, then nbgrader

``units``: what a notebook's translatable text is (markdown paragraphs, comments, message strings)
and how it is put back without touching code. ``catalog``: the POT/PO files (Babel), msgmerge's
fuzzy rules. ``edition``: writing an edition and reporting what is still English. ``runtime``: the
``_()`` lookup for grading messages and widget labels. ``langcheck``: is a text still English?
"""

from .catalog import LANGUAGES, po_path, template_path, update
from .edition import EditionReport, base_assignment, build_edition, edition_name, edition_root
from .runtime import N_, _, current_language, gettext, language, language_of, localize_figure, \
    localize_widget, translate_label, translator

__all__ = [
    "LANGUAGES", "EditionReport", "N_", "_", "base_assignment", "build_edition", "current_language",
    "edition_name", "edition_root", "gettext", "language", "language_of", "localize_figure", "localize_widget",
    "po_path", "template_path", "translate_label", "translator", "update",
]
