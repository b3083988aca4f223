"""Models of the book. Every model takes images in [0, 1]; normalisation is inside."""
from robustbook.models.iqa import SmallIQANet
from robustbook.models.normalize import Normalize

__all__ = ["SmallIQANet", "Normalize"]
