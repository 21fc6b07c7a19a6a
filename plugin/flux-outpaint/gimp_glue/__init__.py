"""GIMP-side glue of flux-outpaint, one concern per module.

``procedure`` runs the two procedures and maps every failure to one line; ``source`` picks
the layer and decides where the new pixels go; ``pixels`` moves pixels between GIMP, PNG and
JPEG; ``dialog`` holds the windows; ``worker`` runs the network job off the main thread;
``placement`` builds the result layer; ``recover`` brings back a paid-for result.

Only the main thread ever calls Gimp, Gegl or Gtk: libgimp's wire to the core has no lock.
"""
