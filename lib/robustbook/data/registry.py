"""The data set registry: every data set the book knows, and how to get it.

``prepare(name)`` returns the folder of a prepared data set: bundled sets are
built on the spot; real ones must have been prepared once by their script in
``data_scripts/`` (the error says which command to run).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustbook.data.manifest import read_dataset
from robustbook.data.root import data_root


@dataclass(frozen=True)
class Entry:
    name: str
    tier: str            # "bundled" or "real"
    task: str
    description: str
    script: str | None = None   # data_scripts/<script> for real sets
    build: Callable[..., Path] | None = None


def _bundled_iqa(**kw: Any) -> Path:
    from robustbook.data.bundled import bundled_iqa

    return bundled_iqa(**kw)


REGISTRY: dict[str, Entry] = {
    e.name: e for e in [
        Entry("bundled-iqa", "bundled", "nr-iqa",
              "crops of scikit-image's photographs under 5 distortions x 5 levels; proxy (SSIM) labels",
              build=_bundled_iqa),
        Entry("koniq10k", "real", "nr-iqa", "KonIQ-10k, 10,073 in-the-wild images with MOS (Hosu et al. 2020)",
              script="koniq10k.py"),
        Entry("nips2017_dev", "real", "classification",
              "NIPS 2017 adversarial competition development set, 1,000 ImageNet-compatible 299x299 images "
              "(robustness evaluation, source 001)", script="nips2017_dev.py"),
        Entry("kadid10k", "real", "fr-iqa", "KADID-10k, 81 references x 25 distortions x 5 levels (Lin et al. 2019)",
              script="kadid10k.py"),
        Entry("live", "real", "fr-iqa",
              "LIVE release 2, 779 distorted images of 29 references, 5 distortions, DMOS (Sheikh et al. 2006)",
              script="live.py"),
        Entry("livec", "real", "nr-iqa",
              "LIVE In the Wild Challenge, 1,162 authentically distorted photographs with MOS "
              "(Ghadiyaram & Bovik 2016)",
              script="livec.py"),
        Entry("mnist", "real", "classification",
              "MNIST, 60,000 + 10,000 greyscale 28x28 handwritten digits (LeCun et al. 1998)", script="mnist.py"),
        Entry("fashion_mnist", "real", "classification",
              "Fashion-MNIST, 60,000 + 10,000 greyscale 28x28 images of clothes (Xiao et al. 2017); "
              "also read directly from Debian's dataset-fashion-mnist package", script="fashion_mnist.py"),
        Entry("svhn", "real", "classification",
              "SVHN cropped digits, 73,257 + 26,032 colour 32x32 house numbers (Netzer et al. 2011)",
              script="svhn.py"),
        Entry("cifar10", "real", "classification",
              "CIFAR-10, 50,000 + 10,000 colour 32x32 images of 10 classes (Krizhevsky 2009)", script="cifar10.py"),
        Entry("imgnet10", "real", "classification",
              "ImgNet10 (source 003, Table 3.6): 10 ImageNet synsets of 3 wnids, 3,000 + 300 images per class "
              "from the ImageNet training split, 128x128; built from a copy you provide", script="imgnet10.py"),
    ]
}


def _bundled_fr_iqa(**kw: Any) -> Path:
    from robustbook.data.bundled_fr import bundled_fr_iqa

    return bundled_fr_iqa(**kw)


# BiRQA chapter (source 002): the bundled full-reference set
REGISTRY["bundled-fr-iqa"] = Entry(
    "bundled-fr-iqa", "bundled", "fr-iqa",
    "reference/distorted pairs of scikit-image crops under 5 distortions x 5 levels; proxy (SSIM x colour) labels",
    build=_bundled_fr_iqa)


# BiRQA chapter (source 002): the full-reference benchmarks of Tables 2, 6, 7 and 9
for _e in [
    Entry("csiq", "real", "fr-iqa", "CSIQ, 866 distorted images of 30 references, 6 distortions, DMOS "
          "(Larson & Chandler 2010)", script="csiq.py"),
    Entry("tid2013", "real", "fr-iqa", "TID2013, 3,000 distorted images of 25 references, 24 distortions x 5 levels, "
          "MOS (Ponomarenko et al. 2013)", script="tid2013.py"),
    Entry("pipal", "real", "fr-iqa", "PIPAL (NTIRE 2021 labelled release), 23,200 distorted images of 200 "
          "references incl. restoration outputs, Elo MOS (Jinjin et al. 2020)", script="pipal.py"),
    Entry("pieapp", "real", "fr-iqa", "PieAPP, 200 references, pairwise preferences; per-image scores of the "
          "official test split (Prashnani et al. 2018)", script="pieapp.py"),
    Entry("bapps", "real", "fr-iqa", "BAPPS 2AFC triplets (ref, p0, p1, human judge), official train/val "
          "(Zhang et al. 2018)", script="bapps.py"),
]:
    REGISTRY[_e.name] = _e

# Denoising chapter (source 003, ch. 2): clean test/training sets and real-noise pairs
for _e in [
    Entry("dncnn-gray", "real", "denoising", "Train400, Set12 and Set68 (BSD68), grayscale (Zhang et al. 2017)",
          script="dncnn_sets.py"),
    Entry("kodak24", "real", "denoising", "Kodak24, 24 colour photographs (Kodak PhotoCD)", script="kodak24.py"),
    Entry("bsd500", "real", "denoising", "BSD432 (BSDS500 without the 68 test images) and CBSD68, colour",
          script="bsd500.py"),
    Entry("polyu", "real", "denoising", "PolyU, 100 real noisy/clean 512x512 crops (Xu et al. 2018)",
          script="polyu.py"),
    Entry("cc", "real", "denoising", "CC, 15 real noisy/clean 512x512 crops (Nam et al. 2016; Xu et al. 2017)",
          script="cc.py"),
    Entry("sidd-small", "real", "denoising", "SIDD-small, 160 sRGB smartphone noisy/ground-truth pairs "
          "(Abdelhamed et al. 2018)", script="sidd_small.py"),
    Entry("sidd-val", "real", "denoising", "SIDD validation, 1,280 sRGB 256x256 noisy/ground-truth blocks",
          script="sidd_val.py"),
]:
    REGISTRY[_e.name] = _e


def prepare(name: str, root: str | Path | None = None, **kw: Any) -> Path:
    """The folder of data set ``name``, ready to read with :func:`robustbook.data.read_dataset`."""
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; valid: {sorted(REGISTRY)}")
    entry = REGISTRY[name]
    if entry.build is not None:
        return entry.build(root=root, **kw)
    folder = data_root(root) / name
    if not (folder / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"data set {name!r} is not prepared under {folder.parent}. Run once: "
            f"python data_scripts/{entry.script} --data-root {folder.parent}  (see data_scripts/README.md)")
    read_dataset(folder, check_files=False)
    return folder
