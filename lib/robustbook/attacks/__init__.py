"""Attacks: the inner maximisation ``max_{δ∈Δ} ℓ(h(x+δ), y)`` in pixel space [0, 1].

Defined in chapter 0 ("Attacking an image quality model"); every later chapter
reuses them with its own loss, model and threat model.

* Plain functions, every setting an argument (what a reader studies): white-box
  :func:`fgsm`, :func:`pgd` (restarts), :func:`apgd`; score-based black-box :func:`square`
  (the gradient-masking check); the denoisers' zero-mean L2 attack :func:`obsatk`
  (:func:`ObsAtk`); random :func:`gaussian_noise`, :func:`random_sign`.
* One configured-attack type, :class:`Attack` (``attack(model, x, y) -> x_adv``, with its
  name, norm, ε, steps and loss), built by :func:`FGSM`, :func:`PGD`, :func:`APGD`,
  :func:`Square`, :func:`GaussianNoise`, :func:`RandomSign`; EOT (``eot=n``) and BPDA
  (``bpda=ctx``) are options of every gradient attack.
* Tools to know the defence: :func:`eot`, :class:`EOT`, :func:`straight_through`,
  :class:`FixedReference` (full-reference models).
"""
from robustbook.attacks import losses
from robustbook.attacks._core import input_gradient
from robustbook.attacks.apgd import apgd
from robustbook.attacks.configured import (
                                           APGD,
                                           FGSM,
                                           PGD,
                                           Attack,
                                           AttackFn,
                                           GaussianNoise,
                                           RandomSign,
                                           Square,
                                           as_attacks,
)
from robustbook.attacks.fgsm import fgsm
from robustbook.attacks.noise import GaussianAugment, gaussian_noise, random_sign
from robustbook.attacks.obsatk import ObsAtk, l2_radius, obsatk, project_zero_mean_l2, reconstruction_error
from robustbook.attacks.pgd import pgd
from robustbook.attacks.square import square
from robustbook.attacks.wrappers import EOT, EOTDraws, FixedReference, eot, eot_loss, straight_through

__all__ = ["fgsm", "pgd", "apgd", "square", "gaussian_noise", "random_sign", "GaussianAugment", "losses",
           "input_gradient",
           "Attack", "AttackFn", "FGSM", "PGD", "APGD", "Square", "GaussianNoise", "RandomSign", "as_attacks",
           "EOT", "EOTDraws", "eot", "eot_loss", "FixedReference", "straight_through",
           "ObsAtk", "obsatk", "project_zero_mean_l2", "l2_radius", "reconstruction_error"]

# Robustness as architecture (source 001): universal perturbation and spatial transformation attacks
from robustbook.attacks.stadv import StAdv, stadv  # noqa: E402
from robustbook.attacks.uap import UAP, apply_uap, train_uap  # noqa: E402

__all__ += ["UAP", "train_uap", "apply_uap", "StAdv", "stadv"]


from robustbook.attacks.configured import FAT  # noqa: E402  (CIFS chapter: friendly adversarial training)
from robustbook.attacks.fat import early_stopped_pgd  # noqa: E402

__all__ += ["FAT", "early_stopped_pgd"]

# BiRQA chapter (source 002): FACPA, a trained perturbation generator (Shumitskaya et al. 2023)
from robustbook.attacks.facpa import FACPA, PerturbationGenerator, train_facpa  # noqa: E402

__all__ += ["FACPA", "PerturbationGenerator", "train_facpa"]
