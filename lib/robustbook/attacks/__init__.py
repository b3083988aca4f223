"""Attacks: the inner maximisation ``max_{δ∈Δ} ℓ(h(x+δ), y)`` in pixel space [0, 1].

Defined in chapter 0 ("Attacking an image quality model"); every later chapter
reuses them with its own loss, model and threat model. White-box: :func:`fgsm`,
:func:`pgd` and :func:`apgd` (Auto-PGD: no step size to tune), with :class:`EOT` and
:func:`straight_through` for randomised and non-differentiable defences;
score-based black-box: :func:`square` (the gradient-masking check); random: :func:`gaussian_noise`.
"""
from robustbook.attacks import losses
from robustbook.attacks._core import input_gradient
from robustbook.attacks.apgd import apgd
from robustbook.attacks.fgsm import fgsm
from robustbook.attacks.noise import GaussianAugment, GaussianNoise, gaussian_noise
from robustbook.attacks.pgd import pgd
from robustbook.attacks.square import square
from robustbook.attacks.wrappers import EOT, FixedReference, straight_through

__all__ = ["fgsm", "pgd", "apgd", "square", "gaussian_noise", "GaussianNoise", "GaussianAugment", "losses", "input_gradient",
           "EOT", "FixedReference", "straight_through"]
