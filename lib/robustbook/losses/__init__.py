"""Training losses beyond cross-entropy (e.g. TisODE's steady-state loss, chapter 3)."""
from robustbook.losses.steady_state import steady_state_loss, with_steady_state

__all__ = ["steady_state_loss", "with_steady_state"]

# BiRQA (source 002): eq. (5), the anchored ranking loss of eqs. (3)/(6), L_AAT
from robustbook.losses.birqa import (AATLoss, anchored_ranking_loss, coverage_eta, regression_loss,  # noqa: E402
                                     theorem1_terms)

__all__ += ["AATLoss", "anchored_ranking_loss", "coverage_eta", "regression_loss", "theorem1_terms"]
