"""Prepare ImgNet10, the ImageNet subset of source 003 (Yan's thesis, ch. 3, §3.3.1, Table 3.6).

The result goes into ``<data root>/imgnet10/``.

ImgNet10 has 10 classes, each the union of three ImageNet synsets (wnids,
Table 3.6 of the thesis, copied in :data:`CLASSES`). "We selected 3,000
training images and 300 test images from each synset and resized all images
to 128 x 128"; both come from the ImageNet **training** split (appendix 3.7.2
names only the wnids). Per class, this script pools the images of its three
wnids, shuffles the pool with a seeded generator, keeps the first 3,000 for
training and the next 300 for testing (so train and test never share an
image), converts them to RGB and resizes them to 128 x 128 (bicubic, aspect
ratio not kept: the thesis says "resized", not "cropped").

ImageNet cannot be downloaded by a script (its terms require an account):
pass the folder of your copy with ``--imagenet-dir``, laid out as the
official ILSVRC-2012 training set, ``<dir>/train/<wnid>/<wnid>_<n>.JPEG``
(``<dir>`` may also be the ``train`` folder itself). Nothing else is read.

Result: ``images/train/<wnid>_<n>.png`` and ``images/test/...`` (RGB PNG,
128 x 128), ``manifest.csv`` (score = class index in :data:`CLASSES` order,
ref_id = the ImageNet file stem, split = train/test) and ``dataset.json``
(``extra.classes``, ``extra.wnids``, the selection seed and per-class counts).

Usage: ``python data_scripts/imgnet10.py --imagenet-dir DIR [--data-root DIR] [--seed 0] [--n-train 3000]
[--n-test 300] [--size 128] [--force]``. ImageNet's terms of access apply (non-commercial research).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a script or loaded by path: find _common
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, output_folder, positive_int, run, split_counts  # noqa: E402

from robustbook.atomic import atomic_dir  # noqa: E402
from robustbook.data.classification import write_classification  # noqa: E402
from robustbook.data.download import ArchiveError  # noqa: E402

NAME = "imgnet10"
#: Table 3.6 of source 003: class name -> its three ImageNet wnids (label = position in this dict)
CLASSES: dict[str, tuple[str, str, str]] = {
    "dog": ("n02090721", "n02091032", "n02088094"),
    "bird": ("n01532829", "n01558993", "n01534433"),
    "car": ("n02814533", "n03930630", "n03100240"),
    "fish": ("n01484850", "n01491361", "n01494475"),
    "monkey": ("n02483708", "n02484975", "n02486261"),
    "turtle": ("n01664065", "n01665541", "n01667114"),
    "lizard": ("n01677366", "n01682714", "n01685808"),
    "bridge": ("n03933933", "n04366367", "n04311004"),
    "cow": ("n02403003", "n02408429", "n02410509"),
    "crab": ("n01980166", "n01978455", "n01981276"),
}
N_TRAIN, N_TEST, SIZE = 3000, 300, 128
EXTENSIONS = (".jpeg", ".jpg", ".png")


class ImageNetLayoutError(ArchiveError):
    """The ImageNet folder lacks a wnid of Table 3.6, or a class has too few images."""


def train_folder(imagenet_dir: str | os.PathLike) -> Path:
    """``<dir>/train`` when it exists, else ``<dir>`` itself; it must hold the wnid folders of Table 3.6."""
    base = Path(imagenet_dir).expanduser().resolve()
    folder = base / "train" if (base / "train").is_dir() else base
    missing = [w for ws in CLASSES.values() for w in ws if not (folder / w).is_dir()]
    if missing:
        raise ImageNetLayoutError(f"{folder} lacks the wnid folder(s) {missing}; --imagenet-dir must point at an "
                                  f"ImageNet training set laid out as train/<wnid>/<wnid>_<n>.JPEG")
    return folder


def select(folder: Path, n_train: int, n_test: int, seed: int) -> dict[str, list[tuple[str, int, Path]]]:
    """Per split, ``(file stem, label, path)`` of the selected images (seeded, disjoint, deterministic)."""
    out: dict[str, list[tuple[str, int, Path]]] = {"train": [], "test": []}
    for label, (name, wnids) in enumerate(CLASSES.items()):
        pool = sorted(p for w in wnids for p in (folder / w).iterdir()
                      if p.is_file() and p.suffix.lower() in EXTENSIONS)
        need = n_train + n_test
        if len(pool) < need:
            raise ImageNetLayoutError(f"class {name!r} (wnids {', '.join(wnids)}) has {len(pool)} images in {folder}, "
                                      f"fewer than the {need} needed ({n_train} train + {n_test} test)")
        order = np.random.default_rng([seed, label]).permutation(len(pool))[:need]
        picked = [pool[int(i)] for i in order]
        out["train"] += [(p.stem, label, p) for p in picked[:n_train]]
        out["test"] += [(p.stem, label, p) for p in picked[n_train:]]
    return out


def load_resized(path: Path, size: int) -> np.ndarray:
    """An ImageNet file as uint8 RGB ``(size, size, 3)``."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.uint8)
    except OSError as exc:
        raise ImageNetLayoutError(f"{path} is not a readable image ({exc})") from None


def prepare(imagenet_dir: str | os.PathLike, data_root: str | os.PathLike | None = None, seed: int = 0,
            force: bool = False, n_train: int = N_TRAIN, n_test: int = N_TEST, size: int = SIZE) -> Path:
    """Select, resize and index ImgNet10 from a local ImageNet training set; return ``<data root>/imgnet10``."""
    for label, v in (("n_train", n_train), ("n_test", n_test), ("size", size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{label} must be a positive int, got {v!r}")
    out, _, keep = output_folder(NAME, data_root, None, force)
    if keep:
        return out
    chosen = select(train_folder(imagenet_dir), n_train, n_test, seed)
    total = sum(len(v) for v in chosen.values())

    def items() -> Iterator[tuple[str, str, int, np.ndarray]]:
        done = 0
        for split in ("train", "test"):
            for stem, label, path in chosen[split]:
                yield split, stem, label, load_resized(path, size)
                done += 1
                if done % 2000 == 0:
                    print(f"{NAME}: {done}/{total} images", file=sys.stderr)

    with atomic_dir(out) as tmp:
        samples = write_classification(
            tmp, items(), name=NAME, classes=list(CLASSES), channels=3,
            source="ImgNet10 of H. Yan's thesis (source 003, Table 3.6), selected from the ImageNet (ILSVRC-2012) "
                   "training set",
            notes=(f"{n_train} train + {n_test} test images per class, both from the ImageNet training split, "
                   f"pooled over the class's three wnids and drawn with seed {seed}; resized to {size}x{size}. "
                   "score = class index (order of extra.classes)."),
            extra={"wnids": {k: list(v) for k, v in CLASSES.items()}, "seed": seed, "size": size,
                   "per_class": {"train": n_train, "test": n_test}})
    counts = split_counts(samples, ("train", "test"))
    print(f"{NAME}: {len(samples)} images, split {counts}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = base_parser("Select, resize and index ImgNet10 (Table 3.6 of source 003) from your ImageNet copy.")
    parser.add_argument("--imagenet-dir", required=True,
                        help="your ImageNet training set: a folder with train/<wnid>/*.JPEG (or the train folder)")
    parser.add_argument("--n-train", type=positive_int, default=N_TRAIN,
                        help=f"training images per class (default {N_TRAIN})")
    parser.add_argument("--n-test", type=positive_int, default=N_TEST, help=f"test images per class (default {N_TEST})")
    parser.add_argument("--size", type=positive_int, default=SIZE, help=f"image side after resizing (default {SIZE})")
    args = parser.parse_args(argv)
    return run(lambda: prepare(args.imagenet_dir, data_root=args.data_root, seed=args.seed, force=args.force,
                               n_train=args.n_train, n_test=args.n_test, size=args.size))


if __name__ == "__main__":
    sys.exit(main())
