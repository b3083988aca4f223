"""Red flags of a robustness evaluation, checked rather than trusted, for any task.

After AutoAttack's ``checks.py`` (Croce & Hein, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks", ICML 2020, and the
repository's ``flags_doc.md``), which warns when a classifier shows the behaviours that
make a gradient attack fail for reasons other than robustness. The book checks the same
red flags for classifiers, quality models (a score per image, output ``(N,)`` or
``(N, 1)``) and denoisers (an image per image):

* :class:`PerturbationChecks` — the adversarial images themselves: the largest
  perturbation norm against the budget, NaNs, pixels outside [0, 1]. An accumulator fed
  batch by batch; :func:`robustbook.metrics.robust_accuracy` and
  :func:`robustbook.evaluate.attack_quality` use it.
* :func:`check_randomness` — a forward pass that differs between two calls on the same
  input in eval mode: a randomised defence, to attack with EOT.
* :func:`check_zero_gradients` — exactly-zero input gradients of the attack's loss:
  FGSM and PGD cannot move those pixels (gradient masking; use BPDA).
* :func:`check_probability_outputs` — a classifier that outputs probabilities, not logits.
* :func:`check_black_box` — a black-box (or random) attack stronger than the best
  white-box one: the gradient attacks are failing, not the model resisting.

:func:`run_checks` runs all that apply and returns a :class:`ChecksReport`, whose flagged
rows a chapter prints on the page (a flagged check is never hidden)::

    report = robust_accuracy(model, x, y, [PGD(8 / 255, 20), Square(8 / 255, 1000)], eps=8 / 255)
    checks = run_checks(model, x[:256], y[:256], attacks_results=report)
    print(checks); run.log("checks", checks.as_dict())

Introduced in the attacks chapter; every chapter that reports a defence prints it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from robustbook.attacks._core import attack_mode, resolve_loss
from robustbook.attacks.losses import Loss

__all__ = ["CheckResult", "ChecksReport", "PerturbationChecks", "check_randomness", "check_zero_gradients",
           "check_probability_outputs", "check_black_box", "is_black_box", "run_checks", "TASKS",
           "ZERO_GRAD_ENTRY_THRESHOLD", "BLACK_BOX_MARGIN"]

NORMS = ("linf", "l2")
TASKS = ("classification", "quality", "image")

#: Flag when more than this fraction of input-gradient entries is exactly zero (see :func:`check_zero_gradients`).
ZERO_GRAD_ENTRY_THRESHOLD = 0.1
#: Default margin of :func:`check_black_box`: one point of accuracy (as a fraction) or 0.01 SROCC.
BLACK_BOX_MARGIN = 0.01


def _jsonable(v: Any) -> Any:
    """Python numbers, strings, lists and dicts; None for a non-finite float."""
    if isinstance(v, Mapping):
        return {str(k): _jsonable(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(u) for u in v]
    if isinstance(v, torch.Tensor):
        return _jsonable(v.tolist())
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if hasattr(v, "item"):  # NumPy scalars
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _status(r: CheckResult) -> str:
    """The status column of the Markdown table: RED FLAG, ok, or n/a (check not applicable)."""
    return "**RED FLAG**" if r.flagged else ("ok" if r.applicable else "n/a")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: what was checked, e.g. ``"zero gradients"``.
        value: the measured number (``None`` when the check did not apply).
        flagged: True when the check raised a red flag.
        message: what the value means and, when flagged, what to do.
        details: further JSON-friendly numbers (kept in :meth:`as_dict`).
    """

    name: str
    value: Any
    flagged: bool
    message: str
    details: dict = field(default_factory=dict)

    @property
    def applicable(self) -> bool:
        """False when the check did not apply (e.g. the probability check on a quality model)."""
        return self.value is not None

    def as_dict(self) -> dict:
        return _jsonable({"name": self.name, "value": self.value, "flagged": bool(self.flagged),
                          "message": self.message, **self.details})

    def __str__(self) -> str:
        return f"{'RED FLAG' if self.flagged else 'ok'}: {self.name} = {_fmt(self.value)}. {self.message}"


@dataclass
class ChecksReport:
    """The results of :func:`run_checks`: print it (a small table), log :meth:`as_dict`."""

    results: list[CheckResult] = field(default_factory=list)
    task: str | None = None

    @property
    def flagged(self) -> list[CheckResult]:
        """The checks that raised a red flag (print these on the page)."""
        return [r for r in self.results if r.flagged]

    @property
    def ok(self) -> bool:
        return not self.flagged

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r}; have {[r.name for r in self.results]}")

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def as_dict(self) -> dict:
        """JSON-friendly: ``{"ok", "flagged": [names], "task", "checks": {name: {value, flagged, message, ...}}}``."""
        return {"ok": self.ok, "task": self.task, "flagged": [r.name for r in self.flagged],
                "checks": {r.name: {k: v for k, v in r.as_dict().items() if k != "name"} for r in self.results}}

    def __str__(self) -> str:
        rows = [(r.name, _fmt(r.value), "RED FLAG" if r.flagged else ("ok" if r.applicable else "n/a"))
                for r in self.results]
        w0 = max([len("check")] + [len(a) for a, _, _ in rows])
        w1 = max([len("value")] + [len(b) for _, b, _ in rows])
        lines = [f"checks ({self.task or 'any task'}): " + ("no red flag" if self.ok else
                                                              f"{len(self.flagged)} RED FLAG(S)"),
                 f"{'check':<{w0}}  {'value':>{w1}}  status"]
        lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
        lines += [f"RED FLAG {r.name}: {r.message}" for r in self.flagged]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = "| check | value | status | what it means |\n|---|---|---|---|\n"
        body = "".join(f"| {r.name} | {_fmt(r.value)} | {_status(r)} | {r.message.replace('|', '/')} |\n"
                       for r in self.results)
        return head + body


# --------------------------------------------------------------------------- the adversarial images


def perturbation_problems(norm: str, eps: float | None, nan: int, max_norm: float | None,
                          lo: float | None, hi: float | None) -> list[str]:
    """The red flags of a set of adversarial images, one sentence each (empty when all is well).

    A perturbation counts as over budget when it exceeds ``eps·(1 + 1e-5) + 1e-6``
    (float32 rounding of ``x + δ`` and of the projection).
    """
    found = []
    if nan:
        found.append(f"{nan} adversarial image(s) contain NaN")
    if lo is not None and lo < 0.0:
        found.append(f"adversarial pixels below 0 (min {lo:.4g})")
    if hi is not None and hi > 1.0:
        found.append(f"adversarial pixels above 1 (max {hi:.4g})")
    if eps is not None and max_norm is not None and max_norm > eps * (1 + 1e-5) + 1e-6:
        found.append(f"{norm} perturbation {max_norm:.4g} exceeds eps {eps:.4g}")
    return found


class PerturbationChecks:
    """Running sanity statistics of adversarial images, fed batch by batch with :meth:`update`.

    Records the number of images, how many hold a NaN, the largest ``‖x_adv − x‖`` (L∞ or
    L2, per image, over the images without NaN) and the smallest and largest finite pixel.
    The red flags (:attr:`problems`): a NaN, a pixel outside [0, 1], a perturbation above
    the budget ``eps`` (if given). Works for any task: it looks at images only.

    Args:
        norm: ``"linf"`` or ``"l2"``, the norm of the reported largest perturbation.
        eps: the budget the attack was meant to keep (``None``: not checked).
        label: the attack's name, shown in the check's name.
    """

    def __init__(self, norm: str = "linf", eps: float | None = None, label: str | None = None) -> None:
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if eps is not None:
            try:
                ok = not isinstance(eps, bool) and float(eps) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"eps must be a non-negative number or None, got {eps!r}")
        self.norm = norm
        self.eps = None if eps is None else float(eps)
        self.label = label
        self.count = 0
        self.nan = 0
        self.max_norm: float | None = None
        self.lo: float | None = None
        self.hi: float | None = None

    def update(self, x: torch.Tensor, x_adv: torch.Tensor) -> PerturbationChecks:
        """Add a batch of clean images ``x`` and their adversarial versions ``x_adv`` (same shape)."""
        if x.shape != x_adv.shape:
            raise ValueError(f"x_adv has shape {tuple(x_adv.shape)}, expected x's {tuple(x.shape)}")
        x, x_adv = x.detach(), x_adv.detach().to(x.device)
        self.count += x.shape[0]
        delta = (x_adv - x).flatten(1).to(torch.float64)
        has_nan = torch.isnan(x_adv).flatten(1).any(dim=1)
        self.nan += int(has_nan.sum())
        delta = delta[~has_nan]
        if delta.numel():
            norms = delta.abs().amax(dim=1) if self.norm == "linf" else delta.norm(dim=1)
            m = float(norms.max())
            self.max_norm = m if self.max_norm is None else max(self.max_norm, m)
        finite = x_adv[torch.isfinite(x_adv)]
        if finite.numel():
            lo, hi = float(finite.min()), float(finite.max())
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)
        return self

    @property
    def problems(self) -> list[str]:
        return perturbation_problems(self.norm, self.eps, self.nan, self.max_norm, self.lo, self.hi)

    @property
    def ok(self) -> bool:
        return not self.problems

    def result(self) -> CheckResult:
        """One :class:`CheckResult` (value: the largest perturbation norm) for a report."""
        name = "perturbation" + (f" [{self.label}]" if self.label else "")
        details = {"norm": self.norm, "eps": self.eps, "n_images": self.count, "nan_images": self.nan,
                   "min_pixel": self.lo, "max_pixel": self.hi}
        if self.count == 0:
            return CheckResult(name, None, False, "no adversarial image was checked", details)
        budget = f" (budget {self.eps:.4g})" if self.eps is not None else " (no budget given)"
        seen = (f"{self.count} adversarial images: largest {self.norm} perturbation "
                f"{_fmt(self.max_norm)}{budget}, {self.nan} with NaN, pixels in [{_fmt(self.lo)}, {_fmt(self.hi)}]")
        if self.ok:
            return CheckResult(name, self.max_norm, False, seen + ".", details)
        return CheckResult(name, self.max_norm, True,
                           f"{seen}: {'; '.join(self.problems)}. The attack left its threat model, so its numbers "
                           "are not robustness numbers: project onto the ε-ball and clip to [0, 1] after every "
                           "step, and look for the NaN's source (a division by a zero norm, a log of 0).", details)


# --------------------------------------------------------------------------- the model


def _outputs(model: Callable, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    dev = _device(model, x)
    with torch.no_grad():
        out = [model(xb.to(dev)) for xb in x.split(batch_size)]
    for o in out:
        if not isinstance(o, torch.Tensor):
            raise TypeError(f"the model must return a tensor, got {type(o).__name__}")
    return torch.cat([o.detach() for o in out])


def _device(model: Callable, x: torch.Tensor) -> torch.device:
    if isinstance(model, nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return x.device


def _fork_rng(model: Callable, x: torch.Tensor):
    """Keep the global random streams unchanged: a check must not shift a chapter's later draws."""
    dev = _device(model, x)
    return torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [])


def check_randomness(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, n: int = 2,
                     rtol: float = 1e-4, eval_mode: bool = True, batch_size: int = 256) -> CheckResult:
    """Does the forward pass differ between calls on the same input? (AutoAttack's ``check_randomized``.)

    Runs ``model`` ``n`` times on ``x`` (in eval mode unless ``eval_mode=False``; every
    submodule's mode is restored) and measures the largest absolute difference between the
    first output and the others, relative to the largest absolute output. Flags a relative
    difference above ``rtol`` (1e-4, AutoAttack's threshold on normalised logits; far above
    the float rounding of a deterministic model run twice, which is 0 on the CPU and about
    1e-6 on a GPU). The global random state is forked, so the check does not shift the
    chapter's later random draws.

    A flag means a randomised defence (noise layers, random transforms, stochastic
    activations such as LWTA, dropout kept on): a plain attack follows one random draw's
    gradient and overstates robustness; attack it with EOT, ``Attack(..., eot=n)``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2 (forward passes to compare), got {n!r}")
    with _fork_rng(model, x), attack_mode(model, eval_mode):
        outs = [_outputs(model, x, batch_size) for _ in range(n)]
    ref = outs[0].to(torch.float64)
    diff = max(float((o.to(torch.float64) - ref).abs().max()) for o in outs[1:]) if ref.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
    details = {"max_abs_difference": diff, "passes": n, "rtol": rtol, "eval_mode": eval_mode}
    if rel > rtol or not math.isfinite(diff):
        return CheckResult("randomness", rel, True,
                           f"the output differs between {n} forward passes on the same input "
                           f"(relative difference {rel:.3g}): a randomised defence. A plain attack follows one "
                           "draw's gradient and overstates robustness: attack it with EOT (Attack(eot=n), e.g. "
                           "PGD(eps, steps, eot=10)) and report the randomised model's accuracy over draws.",
                           details)
    return CheckResult("randomness", rel, False, f"the forward pass is deterministic ({n} passes agree).", details)


def _image_mse(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error between an image output and its target image."""
    return (output - y.to(output.dtype)).flatten(1).pow(2).mean(1)


def _default_loss(task: str, y: torch.Tensor) -> Loss:
    return _image_mse if task == "image" else resolve_loss(None, y)


def check_zero_gradients(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
                         loss: Loss | None = None, threshold: float = ZERO_GRAD_ENTRY_THRESHOLD,
                         eval_mode: bool = True, batch_size: int = 256) -> CheckResult:
    """Fraction of input-gradient entries that are exactly zero (AutoAttack's ``check_zero_gradients``).

    The gradient is ``∇_x loss(model(x), y)`` of the loss the attack increases (default:
    :func:`robustbook.attacks._core.resolve_loss`, i.e. cross-entropy for labels and squared
    error for scores; for image targets, per-image MSE). Reports the fraction of entries
    that are exactly 0 (``value``) and the fraction of images whose whole gradient is 0.

    Why it matters: FGSM's step ``ε·sign(∇)`` leaves a pixel with a zero gradient
    unperturbed (``sign(0) = 0``), and PGD cannot move along it either, so the attack
    spends only part of its budget. Zeros come from quantisation (``round``), thresholds
    and hard gates, or a saturated softmax whose cross-entropy gradient underflows:
    gradient masking (Athalye, Carlini & Wagner 2018), not robustness.

    The flag, and why these thresholds: **any image with an all-zero gradient** (AutoAttack's
    rule: a gradient attack cannot start on it at all), **or more than** ``threshold`` (10 %)
    **of the entries exactly zero**. In a differentiable model an entry is exactly zero
    only when every path from that pixel passes a closed gate (an inactive ReLU, a max-pool
    loser): a plain ReLU CNN has a few percent at most, mostly none (each pixel feeds many
    units), while a quantiser or a hard threshold zeroes most of the image. With 10 % of
    the pixels frozen, FGSM moves only 90 % of the coordinates: a loss of strength worth
    reporting, and far above what a plain network shows.
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a fraction in [0, 1), got {threshold!r}")
    if loss is None:
        loss = _image_mse if (y.is_floating_point() and y.dim() > 1) else resolve_loss(None, y)
    dev = _device(model, x)
    zero_entries, entries, zero_samples = 0, 0, 0
    with attack_mode(model, eval_mode), _fork_rng(model, x):
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            xb = xb.to(dev).detach().requires_grad_(True)
            with torch.enable_grad():
                value = loss(model(xb), yb.to(dev))
                value = value.sum() if value.dim() > 0 else value
                if not value.requires_grad:  # the output does not depend on x at all
                    grad = torch.zeros_like(xb)
                else:
                    (grad,) = torch.autograd.grad(value, xb, allow_unused=True)
                    grad = torch.zeros_like(xb) if grad is None else grad
            zero = grad.flatten(1) == 0
            zero_entries += int(zero.sum())
            entries += zero.numel()
            zero_samples += int(zero.all(dim=1).sum())
    n = x.shape[0]
    frac = zero_entries / entries if entries else 0.0
    frac_samples = zero_samples / n if n else 0.0
    details = {"zero_sample_fraction": frac_samples, "zero_samples": zero_samples, "n_images": n,
               "threshold": threshold, "loss": getattr(loss, "__name__", type(loss).__name__)}
    seen = (f"{100 * frac:.1f} % of the input-gradient entries are exactly zero and {zero_samples} of {n} images "
            "have an all-zero gradient")
    if frac > threshold or zero_samples > 0:
        return CheckResult("zero gradients", frac, True,
                           seen + ". FGSM's sign step leaves such pixels unperturbed (sign 0) and PGD cannot move "
                           "them: a sign of gradient masking (quantisation, thresholds, a saturated softmax). "
                           "Attack through a differentiable surrogate (BPDA: Attack(bpda=...), straight_through), "
                           "try a margin/DLR loss, and compare with a black-box attack (Square).", details)
    return CheckResult("zero gradients", frac, False, seen + ": the gradient reaches the pixels.", details)


def check_probability_outputs(model: Callable[[torch.Tensor], torch.Tensor] | None, x: torch.Tensor | None = None,
                              *, output: torch.Tensor | None = None, atol: float = 1e-5, eval_mode: bool = True,
                              batch_size: int = 256) -> CheckResult:
    """Does a classifier output probabilities instead of logits? (AutoAttack's ``check_range_output``.)

    Flags outputs ``(N, K)``, ``K ≥ 2``, whose entries all lie in ``[0, 1]`` and whose rows
    sum to 1 (within ``atol``). Cross-entropy expects logits: on probabilities it applies a
    second softmax, whose gradient nearly vanishes (the inputs differ by at most 1), so
    gradient attacks stall. Give the attack the logits (remove the final softmax) or use a
    loss on probabilities. Pass ``output`` to check outputs already computed; for outputs
    that are not ``(N, K ≥ 2)`` (scores, images) the check does not apply (value ``None``).
    """
    if output is None:
        if model is None or x is None:
            raise ValueError("pass model and x, or output=")
        with attack_mode(model, eval_mode), _fork_rng(model, x):
            output = _outputs(model, x, batch_size)
    if output.dim() != 2 or output.shape[1] < 2:
        return CheckResult("probability outputs", None, False,
                           f"not applicable: the output has shape {tuple(output.shape)}, not (N, classes)")
    o = output.detach().to(torch.float64)
    in_range = bool((o.min() >= -atol) & (o.max() <= 1 + atol))
    row_err = float((o.sum(1) - 1).abs().max())
    details = {"max_row_sum_error": row_err, "min": float(o.min()), "max": float(o.max())}
    if in_range and row_err <= atol:
        return CheckResult("probability outputs", True, True,
                           "every output row lies in [0, 1] and sums to 1: the model outputs probabilities, not "
                           "logits; cross-entropy on them has vanishing gradients (a second softmax of numbers "
                           "in [0, 1]). Attack the logits (drop the final softmax) or use a loss meant for "
                           "probabilities.", details)
    return CheckResult("probability outputs", False, False, "the outputs are logits (not rows of probabilities).",
                       details)


# --------------------------------------------------------------------------- the attacks against each other


#: Families of :class:`~robustbook.attacks.Attack` that query only the model's outputs.
BLACK_BOX_FAMILIES = ("Square",)


def is_black_box(name: str, attack: Any = None) -> bool:
    """Whether an attack is black-box (or random) for :func:`check_black_box`.

    An :class:`~robustbook.attacks.Attack` is black-box when its ``black_box`` flag is set
    (``Square``), its family is score-based, or it uses no gradient (random noise); a plain
    callable is black-box when its name contains "square" (case-insensitive).
    """
    own = getattr(attack, "black_box", None)
    if own is True:
        return True
    if getattr(attack, "name", None) in BLACK_BOX_FAMILIES or getattr(attack, "uses_gradient", True) is False:
        return True
    if isinstance(own, bool):  # an Attack that says it is white-box
        return False
    return "square" in name.lower()


def check_black_box(results: Mapping[str, float], attacks: Mapping[str, Any] | Sequence | None = None, *,
                    black_box: Iterable[str] | None = None, lower_is_stronger: bool = True,
                    margin: float = BLACK_BOX_MARGIN) -> CheckResult:
    """Is a black-box attack stronger than the best white-box one? (AutoAttack's ``check_square_sr``.)

    Args:
        results: attack name → its number alone: robust accuracy for classifiers or SROCC
            for quality models (``lower_is_stronger=True``, the default), or a worst-case
            objective such as the mean score change (``lower_is_stronger=False``).
        attacks: the attacks (a dict or a list of :class:`~robustbook.attacks.Attack`):
            an ``Attack`` with ``uses_gradient=False`` (Square, random noise) is black-box.
        black_box: names to treat as black-box; default: :func:`is_black_box` of each name
            and its attack (Square and random noise; without ``attacks``, names containing "square").
        margin: how much stronger the black-box attack must be to flag (default 0.01: one
            point of accuracy or 0.01 SROCC; AutoAttack uses 0.2 points on 10,000 images,
            the book's few hundred test points make one image worth 0.2–0.5 points).

    Random noise counts as black-box too: noise beating a gradient attack is an even
    stronger sign that the gradient attack is broken. A flag means the gradients mislead
    the white-box attacks (masking, a wrong loss, too few steps): the white-box numbers
    overstate robustness. Run Square with more queries, use BPDA/EOT, check the loss.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a dict attack name -> number, got {type(results).__name__}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    if attacks is not None and not isinstance(attacks, Mapping):
        from robustbook.attacks import as_attacks

        attacks = as_attacks(attacks)
    if black_box is not None:
        bb = set(black_box)
        unknown = sorted(bb - set(results))
        if unknown:
            raise ValueError(f"black_box names {unknown} are not in results {sorted(results)}")
    else:
        bb = {k for k in results if is_black_box(k, (attacks or {}).get(k))}
    white = {k: float(v) for k, v in results.items() if k not in bb and v is not None}
    black = {k: float(v) for k, v in results.items() if k in bb and v is not None}
    direction = "lower" if lower_is_stronger else "higher"
    details = {"black_box": sorted(black), "white_box": sorted(white), "margin": margin,
               "lower_is_stronger": lower_is_stronger}
    if not white or not black:
        return CheckResult("black-box beats white-box", None, False,
                           "not applicable: needs at least one white-box and one black-box attack "
                           f"(white-box: {sorted(white)}, black-box: {sorted(black)})", details)
    sign = 1.0 if lower_is_stronger else -1.0
    best_white = min(white, key=lambda k: sign * white[k])
    best_black = min(black, key=lambda k: sign * black[k])
    gap = sign * (white[best_white] - black[best_black])  # > 0: the black-box attack is stronger
    details.update(best_white=best_white, best_white_value=white[best_white], best_black=best_black,
                   best_black_value=black[best_black])
    seen = (f"best black-box {best_black!r} reaches {black[best_black]:.4g}, best white-box {best_white!r} "
            f"{white[best_white]:.4g} ({direction} is stronger)")
    if gap > margin:
        return CheckResult("black-box beats white-box", gap, True,
                           seen + f": the black-box attack is stronger by {gap:.4g} > {margin:g}. The gradients "
                           "mislead the white-box attacks (gradient masking, a wrong loss, too few steps), so their "
                           "numbers overstate robustness: use BPDA/EOT, a margin loss, more steps and restarts, "
                           "and report the worst case over all attacks.", details)
    return CheckResult("black-box beats white-box", gap, False,
                       seen + ": no black-box attack beats the gradient attacks.", details)


# --------------------------------------------------------------------------- all at once


def _task_of(y: torch.Tensor, output: torch.Tensor) -> str:
    if not y.is_floating_point():
        return "classification"
    if output.dim() == 1 or (output.dim() == 2 and output.shape[1] == 1):
        return "quality"
    return "image"


def run_checks(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
               task: str = "auto", loss: Loss | None = None, attacks_results: Any = None,
               attacks: Mapping[str, Any] | Sequence | None = None, black_box: Iterable[str] | None = None,
               lower_is_stronger: bool = True, margin: float = BLACK_BOX_MARGIN,
               perturbation: PerturbationChecks | Iterable[PerturbationChecks] | None = None,
               batch_size: int = 256, model_checks: bool = True) -> ChecksReport:
    """Every check that applies to ``model`` on (x, y), as one :class:`ChecksReport`.

    Args:
        model: classifier (logits ``(N, K)``), quality model (scores ``(N,)``/``(N, 1)``) or
            denoiser (images); run in eval mode, every submodule's mode restored.
        x: images in [0, 1]; a few hundred are plenty (one forward pass each, twice, and one
            backward pass).
        y: labels (classifiers), scores (quality models) or target images (denoisers).
        task: ``"classification"``, ``"quality"``, ``"image"`` or ``"auto"`` (integer ``y``
            → classification; float ``y`` and a score output → quality; else image).
        loss: the loss the attacks increase, for the zero-gradient check (default:
            :func:`~robustbook.attacks._core.resolve_loss`; per-image MSE for denoisers).
        attacks_results: a :class:`~robustbook.metrics.RobustReport`, a
            :class:`~robustbook.evaluate.QualityRobustReport` (their per-attack numbers and
            perturbation checks are used), or a dict attack name → number for
            :func:`check_black_box` (then ``lower_is_stronger`` says how to read it).
        attacks: the attacks behind the results (marks the black-box ones).
        black_box, margin: passed to :func:`check_black_box`.
        perturbation: accumulator(s) of adversarial images to include.
        batch_size: images per forward pass.
        model_checks: run the checks of the model (probability outputs, randomness, zero
            gradients); ``False`` keeps only the attack checks (black-box, perturbation).
    """
    if task not in TASKS + ("auto",):
        raise ValueError(f"task must be one of {TASKS + ('auto',)}, got {task!r}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() < 2 or x.shape[0] == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x must be a non-empty batch (N, ...) and y hold one target per image; got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    results: list[CheckResult] = []
    if model_checks:
        with attack_mode(model, True), _fork_rng(model, x):
            output = _outputs(model, x[:batch_size], batch_size)
        if task == "auto":
            task = _task_of(y, output)
        if task == "classification":
            results.append(check_probability_outputs(None, output=output))
        results.append(check_randomness(model, x, batch_size=batch_size))
        results.append(check_zero_gradients(model, x, y, loss=loss if loss is not None else _default_loss(task, y),
                                            batch_size=batch_size))
    elif task == "auto":
        task = None
    accumulators: list[PerturbationChecks] = []
    if perturbation is not None:
        accumulators += [perturbation] if isinstance(perturbation, PerturbationChecks) else list(perturbation)
    if attacks_results is not None:
        if hasattr(attacks_results, "checks_inputs"):
            own = attacks_results.checks_inputs()
            accumulators += own.get("perturbation", [])
            per_attack = own["results"]
            lower_is_stronger = own.get("lower_is_stronger", lower_is_stronger)
            if black_box is None:
                black_box = own.get("black_box")
        elif isinstance(attacks_results, Mapping):
            per_attack = attacks_results
        else:
            raise TypeError("attacks_results must be a RobustReport, a QualityRobustReport or a dict "
                            f"attack name -> number, got {type(attacks_results).__name__}")
        if black_box is not None:
            black_box = [k for k in black_box if k in per_attack]
        results.append(check_black_box(per_attack, attacks, black_box=black_box,
                                       lower_is_stronger=lower_is_stronger, margin=margin))
    results += [p.result() for p in accumulators]
    return ChecksReport(results, task)
