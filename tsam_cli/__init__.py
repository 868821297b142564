"""tsam: video inpainting from the command line (TSAM, Zou et al., CVPR 2021)."""

__version__ = "0.1.0"
