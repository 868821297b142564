"""tsam: video inpainting from the command line and from Python (TSAM, Zou et al., CVPR 2021).

The Python API (:mod:`tsam_cli.api`, docs/api.md)::

    import tsam_cli as tsam

    model = tsam.load_model("compact")
    tsam.inpaint("in.mp4", mask="mask.mp4", output="out.mp4", model=model)

Its names are loaded on first use, so ``import tsam_cli`` (and ``tsam --help``) stays light.
"""

__version__ = "0.1.0"

#: the public API: name -> module that defines it
_API = {"inpaint": "tsam_cli.api", "outpaint": "tsam_cli.api", "OutpaintOptions": "tsam_cli.options",
        "load_model": "tsam_cli.api", "make_mask": "tsam_cli.api", "Model": "tsam_cli.api",
        "InpaintOptions": "tsam_cli.options", "TsamError": "tsam_cli.errors"}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tsam_cli' has no attribute {name!r}")
