"""Attacks: the inner maximisation ``max_{δ∈Δ} ℓ(h(x+δ), y)`` in pixel space [0, 1].

Defined in chapter 0 ("Attacking an image quality model"); every later chapter
reuses them with its own loss, model and threat model.
"""
from robustbook.attacks import losses
from robustbook.attacks.fgsm import fgsm
from robustbook.attacks.pgd import pgd
from robustbook.attacks.wrappers import EOT, FixedReference, straight_through

__all__ = ["fgsm", "pgd", "losses", "EOT", "FixedReference", "straight_through"]
