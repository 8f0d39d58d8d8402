"""What the demos that train a small model share: the 8x8 handwritten digits (scikit-learn's bundled
load_digits, no download) and a plain mini-batch loop. numpy and torch are imported when used."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(images 1797 x 8 x 8 scaled to [0, 1], labels): scikit-learn's bundled digits.

    Read from the file `load_digits` reads (64 pixels and the label per line), without importing
    sklearn.datasets: that import costs 1-3 s in a fresh worker, which `tutor demo` reported as the demo's
    own time. `load_digits` itself when the file is not where this scikit-learn keeps it."""
    import numpy as np

    data = _bundled_digits()
    if data is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)
    return (data[:, :-1].reshape(-1, 8, 8) / 16.0).astype(np.float32), data[:, -1].astype(np.int64)


def _bundled_digits() -> np.ndarray | None:
    import gzip
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = np.loadtxt(f, delimiter=",")
            if data.ndim == 2 and data.shape[1] == 65:
                return data
    return None


def digits_tensors(device: str, seed: int):
    """Standardised digits split 80/20 with a seeded permutation."""
    import torch

    images, labels = digits()
    x = torch.from_numpy(images.reshape(len(images), -1))
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = torch.from_numpy(labels)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    tr, va = perm[:cut], perm[cut:]
    return x[tr].to(device), y[tr].to(device), x[va].to(device), y[va].to(device)


def train_steps(model, opt, x, y, steps: int, bs: int, gen: torch.Generator, lrs=None) -> list[float]:
    """``steps`` SGD steps on random mini-batches of ``bs``; the losses (stops at the first non-finite)."""
    import torch
    import torch.nn.functional as F

    losses = []
    for i in range(steps):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = float(lrs[i])
        idx = torch.randint(0, len(x), (bs,), generator=gen).to(x.device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
    return losses
