"""GIMP-side glue of flux-outpaint, one concern per module; the decisions are the core's.

``procedure`` runs the outpaint procedure and maps every failure to one line; ``recover``
brings back a paid-for result; ``session`` holds what both need (key, time limit, worker);
``source`` picks the layer; ``pixels`` moves pixels between GIMP, PNG and JPEG; ``dialog``
holds the windows; ``worker`` runs the network job off the main thread; ``placement`` builds
the result layer.

Only the main thread ever calls Gimp, Gegl or Gtk: libgimp's wire to the core has no lock.
"""
