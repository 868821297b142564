"""The names of the paper's three mask kinds, without numpy.

``tsam eval`` and ``tsam masks generate`` offer them as choices, so the CLI needs them at
import time; :mod:`tsam_cli.data.mask_gen`, which makes the masks, imports numpy and cv2
and is loaded only when a command runs.  The order is part of the seed: ``generate_masks``
seeds its generator with ``KINDS.index(kind)``, so reordering changes every generated mask.
"""

KINDS = ("object", "curve", "stationary")
