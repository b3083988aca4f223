"""One figure style for the whole book."""
from __future__ import annotations

import matplotlib

PALETTE = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#30638e", "#66a182", "#8d96a3", "#003d5b"]


def use_style() -> None:
    """Apply the book's matplotlib/seaborn style (small, legible, colour-blind-friendly)."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.9)
    matplotlib.rcParams.update({
        "figure.dpi": 80, "savefig.dpi": 90, "figure.figsize": (6.4, 3.6),
        "axes.spines.top": False, "axes.spines.right": False, "image.cmap": "viridis",
        "legend.frameon": False,
    })


def show_images(ax_row, images, titles=None) -> None:
    """Draw a row of images ``(C, H, W)`` tensors or ``(H, W, C)`` arrays in [0, 1] without axes."""
    import numpy as np

    for i, (ax, im) in enumerate(zip(ax_row, images, strict=False)):
        a = im.detach().cpu().numpy() if hasattr(im, "detach") else np.asarray(im)
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a.transpose(1, 2, 0)
        ax.imshow(np.clip(a.squeeze(), 0, 1), cmap="gray" if a.squeeze().ndim == 2 else None,
                  interpolation="nearest")  # sharp pixels, and PNGs that compress
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
