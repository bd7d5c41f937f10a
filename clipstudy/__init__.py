"""clipstudy: reproducible studies of how fine-tuning changes the reliability of CLIP-style models.

Importing the package is cheap on purpose: torch, torchvision and open_clip are imported by the
submodules that need them (``clipstudy.models``, ``clipstudy.train``, ...), never here.
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
