"""The plug-in in the person's language: its own gettext catalog, for the glue and the core.

GIMP 3's rule for a third-party plug-in: ``do_set_i18n`` answers with the plug-in's own text
domain and a catalog folder relative to the plug-in folder, ``locale/<lang>/LC_MESSAGES/
flux-outpaint.mo`` (GIMP's own ``gimp30-*`` domains are not ours to add to).  The same
catalog is loaded here with Python's ``gettext``, which picks the language from LANGUAGE,
LC_ALL, LC_MESSAGES or LANG, as GIMP sets them for its plug-ins when the person chooses a
language in Preferences.  ``install`` routes ``flux_outpaint.i18n`` through it, so the core's
one-line messages are translated too while the core itself never loads a catalog.
"""

from __future__ import annotations

import gettext
import os

from flux_outpaint import i18n

DOMAIN = "flux-outpaint"
CATALOG_DIR = "locale"  # relative to the plug-in folder, as do_set_i18n answers
PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def install(plugin_dir: str = PLUGIN_DIR) -> gettext.NullTranslations:
    """Load the catalog for the current language (English: none) and use it everywhere."""
    catalog = gettext.translation(DOMAIN, os.path.join(plugin_dir, CATALOG_DIR), fallback=True)
    i18n.install(catalog.gettext, catalog.ngettext)
    return catalog
