"""Training losses beyond cross-entropy (TisODE's steady-state loss, chapter 3; HAT for denoisers, ch. 2; BiRQA/AAT)."""
from robustbook.losses.birqa import AATLoss, anchored_ranking_loss, coverage_eta, regression_loss, theorem1_terms
from robustbook.losses.hat import HATLoss, half_sse
from robustbook.losses.steady_state import steady_state_loss, with_steady_state

__all__ = ["steady_state_loss", "with_steady_state", "HATLoss", "half_sse",
           # BiRQA (source 002): eq. (5), the anchored ranking loss of eqs. (3)/(6), L_AAT
           "AATLoss", "anchored_ranking_loss", "coverage_eta", "regression_loss", "theorem1_terms"]

from robustbook.losses.cifs import AdaptiveLoss, adaptive_loss  # noqa: E402  (CIFS chapter, eq. 4.3)

__all__ += ["AdaptiveLoss", "adaptive_loss"]

from robustbook.losses.tres import FlipConsistency, relative_ranking_loss, symmetric_l1, tres_loss  # noqa: E402  (TReS, ch. robustblock)

__all__ += ["FlipConsistency", "relative_ranking_loss", "symmetric_l1", "tres_loss"]
