"""Named pause points, so tests can interrupt a real ``tsam`` process at an exact moment.

When ``TSAM_TEST_PAUSE_AT`` names a point (``startup``, ``writing``, ``commit``, ``swap``,
``committed``) and ``TSAM_TEST_PAUSE_DIR`` a folder, the process creates
``DIR/<point>.paused`` when it reaches that point and waits until ``DIR/<point>.resume``
exists (at most 60 s), then goes on. A signal sent while it waits is delivered at once
where signals are not held back (the wait is a ``sleep``), or when the held-back section
ends. Without the variables this is a no-op costing one dictionary look-up.
"""

from __future__ import annotations

import os
import time

_WAIT_S = 60.0  # upper bound so a broken test can never hang a run forever


def pause_point(name: str) -> None:
    """Pause here if the test hook names ``name`` (see the module docstring)."""
    if os.environ.get("TSAM_TEST_PAUSE_AT") != name:
        return
    folder = os.environ.get("TSAM_TEST_PAUSE_DIR", ".")
    with open(os.path.join(folder, f"{name}.paused"), "w"):
        pass
    resume = os.path.join(folder, f"{name}.resume")
    end = time.monotonic() + _WAIT_S
    while not os.path.exists(resume) and time.monotonic() < end:
        time.sleep(0.01)
