"""Video-inpainting quality metrics: PSNR, SSIM, VFID (I3D + Fréchet distance), E_warp, LPIPS.

Frames enter every metric as uint8 RGB arrays ``(T, H, W, 3)`` in [0, 255]; masks as
``(T, H, W)`` with **1 = hole**.  ``vfid``/``i3d``/``lpips`` import torch; the others need only numpy
and OpenCV, and this package imports none of them eagerly.
"""
