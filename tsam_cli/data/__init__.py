"""Datasets shared by ``tsam eval`` and ``tsam train``: their folder layouts (``layouts``) and
the paper's seeded masks (``mask_gen``) and their names without numpy (``mask_kinds``)."""
