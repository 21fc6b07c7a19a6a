"""The translation hook: the core's user-facing text, in the language of whoever shows it.

The core never loads a catalog (it stays free of ``gi`` and of any place on disk): every
string a person may read is written here as its English message id, marked with ``_``
(translate now), ``N_`` (a constant, translated where it is shown) or ``ngettext`` (a count).
By default they come back unchanged, so the CLI and the logs stay English and share these
ids.  The GIMP plug-in calls ``install`` with its gettext catalog before anything runs.

Placeholders are ``str.format`` names (``{status}``), never positional or ``%``: a translation
may reorder them, and ``scripts/i18n.py`` checks that every catalog keeps the same names.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["N_", "_", "install", "ngettext", "uninstall"]

Gettext = Callable[[str], str]
NGettext = Callable[[str, str, int], str]


def _english(message: str) -> str:
    return message


def _english_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


_gettext: Gettext = _english
_ngettext: NGettext = _english_plural


def _(message: str) -> str:
    """``message`` in the installed language (English when none is installed)."""
    return _gettext(message)


def N_(message: str) -> str:
    """Marks a constant for the catalog; ``_`` translates it where it is shown."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for the count ``n`` in the installed language."""
    return _ngettext(singular, plural, n)


def install(gettext: Gettext, plural: NGettext) -> None:
    """Route every marked string through a catalog (the GIMP glue's, from ``gettext``)."""
    global _gettext, _ngettext
    _gettext, _ngettext = gettext, plural


def uninstall() -> None:
    """Back to English."""
    install(_english, _english_plural)
