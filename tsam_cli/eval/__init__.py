"""``tsam eval``: score inpainting results on a dataset with the metrics of ``tsam_cli.metrics``."""
