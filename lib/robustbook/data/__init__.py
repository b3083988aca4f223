"""The data layer: one manifest format, a registry, the bundled offline tier.

Names are imported lazily, so ``data_scripts/`` (which need only the manifest and the
downloader) start without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "COLUMNS": "manifest", "DatasetMeta": "manifest", "ManifestError": "manifest", "Sample": "manifest",
    "read_dataset": "manifest", "split_by_reference": "manifest", "write_dataset": "manifest",
    "data_root": "root",
    "REGISTRY": "registry", "prepare": "registry",
    "ManifestDataset": "tensors", "load_split": "tensors", "normalise_score": "tensors",
    "FlipRotateDataset": "tensors",
    "procedural10": "procedural", "digits": "digits", "mnist5k": "mnist_subset",
    "fashion_mnist": "fmnist",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'robustbook.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"robustbook.data.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
