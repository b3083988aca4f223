"""Metrics of the book: IQA agreement, PSNR, robust accuracy and the paired bootstrap.

* :mod:`~robustbook.metrics.correlation` — SROCC, PLCC, KROCC, RMSE (+ VQEG logistic fit)
* :mod:`~robustbook.metrics.image` — PSNR
* :mod:`~robustbook.metrics.robust` — robust accuracy the AutoAttack way
* :mod:`~robustbook.metrics.denoising` — PSNR per noise column of a denoiser (thesis ch. 2, §2.3.2)
* :mod:`~robustbook.metrics.bootstrap` — paired bootstrap of ΔSROCC (BiRQA, appendix C.5)
"""
from __future__ import annotations

from robustbook.metrics.bootstrap import BootstrapResult, paired_bootstrap_srocc
from robustbook.metrics.correlation import (
    LogisticFit,
    iqa_report,
    krocc,
    logistic4,
    logistic_fit,
    plcc,
    rmse,
    srocc,
)
from robustbook.metrics.denoising import denoise, denoising_psnr
from robustbook.metrics.image import psnr
from robustbook.metrics.robust import RobustReport, accuracy_on_correct, robust_accuracy

__all__ = [
    "srocc",
    "plcc",
    "krocc",
    "rmse",
    "logistic4",
    "logistic_fit",
    "LogisticFit",
    "iqa_report",
    "psnr",
    "robust_accuracy",
    "accuracy_on_correct",
    "RobustReport",
    "paired_bootstrap_srocc",
    "BootstrapResult",
    "denoise",
    "denoising_psnr",
]

# MSU benchmark robustness scores (source 001)
from robustbook.metrics.score_robustness import (  # noqa: E402
    ScoreCI,
    abs_gain,
    abs_gain_ci,
    auc_over_eps,
    r_score,
    r_score_ci,
    robustness_scores,
)

__all__ += ["abs_gain", "r_score", "abs_gain_ci", "r_score_ci", "ScoreCI", "auc_over_eps", "robustness_scores"]

# IR-Score, the book's reading (BiRQA chapter; used by the audit)
from robustbook.metrics.ir_score import ir_score, ir_score_over_eps  # noqa: E402

__all__ += ["ir_score", "ir_score_over_eps"]
