"""Device choice: CUDA, then Apple's MPS, then the CPU."""
from __future__ import annotations

import torch


def default_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else the best available device (cuda > mps > cpu)."""
    if prefer not in (None, "auto"):
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but CUDA is not available; valid: 'auto', 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")
