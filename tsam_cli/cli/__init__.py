"""The command line: ``tsam inpaint | preview | mask | eval | train | weights`` (and the hidden
``masks generate``), one module per command group:

* :mod:`.main`: the Typer app and ``tsam inpaint`` (one video through :func:`tsam_cli.api.inpaint`,
  several through :mod:`tsam_cli.batch`); :func:`~.main.main` turns every error into one
  ``error:`` line and its exit code;
* :mod:`.mask` and :mod:`.mask_track`: ``tsam mask text|static`` and ``tsam mask track``;
* :mod:`.preview`: ``tsam preview``;
* :mod:`.common`: what the commands that read one VIDEO and write one ``-o`` share (mask
  makers, preview);
* :mod:`.eval`: ``tsam eval`` and ``tsam masks generate``;
* :mod:`.train`: ``tsam train``;
* :mod:`.weights`: ``tsam weights list|download|convert``;
* :mod:`.__main__`: ``python -m tsam_cli.cli`` (what torchrun launches), the same as ``tsam``.

The console script is :func:`tsam_cli.entry.run` (signal handlers first, then
:func:`~.main.main`). Commands only parse options and call the library; torch, cv2 and av are
imported inside them, so ``tsam --help`` loads none of them.
"""
