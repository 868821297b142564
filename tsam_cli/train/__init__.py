"""Training of TSAM generators: data (:mod:`.data`), VGG features (:mod:`.vgg`), losses
(:mod:`.losses`) and the loop (:mod:`.trainer`). Importing this package does not import torch;
import the submodules for that."""

__all__ = ["data", "vgg", "losses", "trainer"]
