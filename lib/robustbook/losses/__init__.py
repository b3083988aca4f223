"""Training losses beyond cross-entropy (e.g. TisODE's steady-state loss, chapter 3)."""
from robustbook.losses.steady_state import steady_state_loss, with_steady_state

__all__ = ["steady_state_loss", "with_steady_state"]
