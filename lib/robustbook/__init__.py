"""robustbook: the thin library shared by every chapter of the Robust Vision Book.

The whole book uses one framing (Kolter & Madry's tutorial)::

    min_θ  E_(x,y)  max_{δ ∈ Δ}  ℓ(h_θ(x + δ), y)

``robustbook.attacks`` solves the inner maximisation, ``robustbook.train``
the outer minimisation, and the chapters swap ℓ, h and Δ, not the machinery.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
