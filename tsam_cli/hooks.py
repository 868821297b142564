"""Named pause points, so tests can interrupt a real ``tsam`` process at an exact moment.

When ``TSAM_TEST_PAUSE_AT`` names a point and ``TSAM_TEST_PAUSE_DIR`` a folder, the process
creates ``DIR/<point>.paused`` each time it reaches that point and waits until
``DIR/<point>.resume`` exists (at most 60 s), then goes on; once ``.resume`` exists, later
passes go straight on. A signal sent while it waits is delivered at once where signals are not held
back (the wait is a ``sleep``), or when the held-back section ends. Without the variables this
is a no-op costing one dictionary look-up.

The points (``grep -rn pause_point tsam_cli`` lists them):

- ``startup`` (entry.py): the console entry point, signal handlers installed, before any
  command runs.
- ``target-open`` (media/output.py, ``OutputTarget.__enter__``): the output's lock taken and
  its temporary made, nothing written yet. Every command writing through ``OutputTarget``
  passes it: inpaint, mask, preview, eval, masks generate, weights convert.
- ``writing`` (core/pipeline.py): inpaint, the first frame not yet written into the
  temporary; also (model/official.py) ``tsam weights convert``, the converted file written
  into its temporary, before the commit.
- ``commit`` (media/output.py, ``OutputTarget.commit``): the temporary complete, signals held
  back, nothing swapped yet.
- ``swap`` (media/output.py): a folder output replacing an old one, between the two renames
  (the old folder set aside, the new one not yet in place).
- ``committed`` (media/output.py): the new output in place, signals still held back, the old
  one not yet removed.
- ``train-write-<stem>`` (train/trainer.py, ``_write_atomically``): ``tsam train``, a run
  file complete and fsynced in its temporary, not yet renamed over ``<stem>``'s file:
  ``train-write-config`` (config.json, at the start of a run), ``train-write-metrics``
  (metrics.csv trimmed on resume), ``train-write-step_NNNNNNN`` (the sample PNG of step N,
  before that step's checkpoint), ``train-write-checkpoint`` (checkpoint.pt) and
  ``train-write-generator`` (the exported generator.safetensors, at the end).
"""

from __future__ import annotations

import os
import time

_WAIT_S = 60.0  # upper bound so a broken test can never hang a run forever


def pause_point(name: str) -> None:
    """Pause here if the test hook names ``name`` (see the module docstring)."""
    folder = os.environ.get("TSAM_TEST_PAUSE_DIR")
    if os.environ.get("TSAM_TEST_PAUSE_AT") != name or not folder:  # both, so a stray variable does nothing
        return
    with open(os.path.join(folder, f"{name}.paused"), "w"):
        pass
    resume = os.path.join(folder, f"{name}.resume")
    end = time.monotonic() + _WAIT_S
    while not os.path.exists(resume) and time.monotonic() < end:
        time.sleep(0.01)
