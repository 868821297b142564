"""The inpainting stages: optical flow and its completion (``flow``), pixel propagation
(``propagate``), the streaming pipeline over temporal windows (``pipeline``) and batches
(``batch``)."""
