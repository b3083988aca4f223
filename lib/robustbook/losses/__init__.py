"""Training losses beyond cross-entropy (TisODE's steady-state loss, chapter 3; HAT for denoisers, ch. 2)."""
from robustbook.losses.hat import HATLoss, half_sse
from robustbook.losses.steady_state import steady_state_loss, with_steady_state

__all__ = ["steady_state_loss", "with_steady_state", "HATLoss", "half_sse"]
