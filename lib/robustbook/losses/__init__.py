"""Training losses beyond cross-entropy (e.g. TisODE's steady-state loss, chapter 3)."""
from robustbook.losses.steady_state import steady_state_loss, with_steady_state

__all__ = ["steady_state_loss", "with_steady_state"]
from robustbook.losses.cifs import AdaptiveLoss, adaptive_loss  # noqa: E402  (CIFS chapter, eq. 4.3)

__all__ += ["AdaptiveLoss", "adaptive_loss"]
