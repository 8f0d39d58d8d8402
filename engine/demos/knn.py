"""The knn demo: 1-NN vs k-NN decision boundaries on 2-D data; train/test accuracy of each."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.errors import BadParameter
from engine.parse import N, num_value
from engine.spec import CS231N_CARDS, SEED, DemoOutput, DemoSpec, KBRef, ParamSpec

if TYPE_CHECKING:
    import torch


SPEC = DemoSpec(
    name="knn",
    order=140,
    summary="1-NN vs k-NN decision boundaries on 2-D data; train/test accuracy of each.",
    params=(
        ParamSpec(
            name="k",
            kind="int",
            default=5,
            help="neighbours for the k-NN panel",
            lo=1,
            hi=51,
            words=("k", "neighbors", "neighbours"),
            number_before=True,
        ),
        ParamSpec(
            name="dataset",
            kind="choice",
            default="moons",
            help="2-D data set",
            choices=("moons", "circles", "blobs"),
        ),
        ParamSpec(
            name="points",
            kind="int",
            default=200,
            help="training points",
            lo=10,
            hi=1000,
            words=("points", "samples"),
            number_before=True,
        ),
        ParamSpec(
            name="noise",
            kind="float",
            default=0.3,
            help="label noise / spread",
            lo=0.0,
            hi=2.0,
            words=("noise",),
        ),
        ParamSpec(
            name="distance",
            kind="choice",
            default="l2",
            help="distance",
            choices=("l1", "l2"),
            aliases={"manhattan": "l1", "euclidean": "l2"},
        ),
        SEED,
    ),
    examples=(
        "1-NN vs k-NN decision boundaries",
        "knn with k=15 on circles",
        "nearest neighbour classifier, L1 distance",
        "knn k=7 points=300",
    ),
    keywords={r"\bk-?nn\b|nearest neighbo": 7, r"\b\d+-nn\b": 7, "decision boundar": 3, "neighbou?rs": 2},
    kb=(
        KBRef(CS231N_CARDS, "Compare the train and test error of a 1-nn to a 5-nn classifier."),
        KBRef(CS231N_CARDS, "higher values of k in the KNN classifier have what effect?"),
        KBRef(CS231N_CARDS, "T/F: the decision boundary of a KNN classifier is linear."),
        KBRef(CS231N_CARDS, "k-nearest neighbor classifier"),
    ),
    budget_s=20,
)


def extract(norm: str) -> dict:
    ks = [k for k in re.findall(rf"({N})-?nn\b", norm) if float(k) != 1]  # "1-nn vs 5-nn": k is the other
    return {"k": num_value(ks[0])} if ks else {}


def _knn_predict(train_x, train_y, q, k: int, p_norm: float) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    d = torch.cdist(q, train_x, p=p_norm)
    idx = d.topk(k, largest=False).indices
    votes = F.one_hot(train_y[idx], 2).sum(1)
    return votes.argmax(1)  # ties go to the lower label, as in scikit-learn


def run(p: dict, device: str) -> DemoOutput:
    import numpy as np
    import torch
    from sklearn import datasets
    from sklearn.neighbors import KNeighborsClassifier

    from engine.plot import figure, png

    k, n, noise, seed = p["k"], p["points"], p["noise"], p["seed"]
    if k > n:
        raise BadParameter(f"knn: k ({k}) cannot exceed the number of training points ({n})")
    if p["dataset"] == "moons":
        X, Y = datasets.make_moons(2 * n, noise=noise, random_state=seed)
    elif p["dataset"] == "circles":
        X, Y = datasets.make_circles(2 * n, noise=noise / 3, factor=0.5, random_state=seed)
    else:
        X, Y = datasets.make_blobs(2 * n, centers=2, cluster_std=1.0 + 3 * noise, random_state=seed)
    Xtr, Ytr, Xte, Yte = X[:n], Y[:n], X[n:], Y[n:]
    pn = 1.0 if p["distance"] == "l1" else 2.0
    tx, ty = torch.tensor(Xtr, dtype=torch.float64, device=device), torch.tensor(Ytr, device=device)
    qx = torch.tensor(Xte, dtype=torch.float64, device=device)
    numbers: dict = {}
    agree = []
    preds_grid = {}
    pad = 0.5
    gx, gy = np.meshgrid(
        np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, 160),
        np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, 160),
    )
    grid = torch.tensor(np.c_[gx.ravel(), gy.ravel()], dtype=torch.float64, device=device)
    for kk in (1, k):
        tr = _knn_predict(tx, ty, tx, kk, pn).cpu().numpy()
        te = _knn_predict(tx, ty, qx, kk, pn).cpu().numpy()
        tag = "1nn" if kk == 1 else "knn"
        numbers[f"train_accuracy_{tag}"] = float((tr == Ytr).mean())
        numbers[f"test_accuracy_{tag}"] = float((te == Yte).mean())
        sk = KNeighborsClassifier(kk, p=int(pn)).fit(Xtr, Ytr).predict(Xte)
        agree.append(float((sk == te).mean()))
        preds_grid[kk] = _knn_predict(tx, ty, grid, kk, pn).cpu().numpy().reshape(gx.shape)
    numbers["k"] = k
    numbers["agreement_with_sklearn"] = min(agree)

    fig = figure(10, 4.2)
    axs = fig.subplots(1, 2)
    from matplotlib.colors import ListedColormap

    for ax, kk in zip(axs, (1, k), strict=True):
        ax.contourf(
            gx, gy, preds_grid[kk], levels=[-0.5, 0.5, 1.5], cmap=ListedColormap(["#c6dbef", "#fcbba1"])
        )
        ax.scatter(
            Xtr[:, 0],
            Xtr[:, 1],
            c=np.where(Ytr == 0, "#1f77b4", "#d62728"),
            s=14,
            edgecolors="white",
            linewidths=0.4,
        )
        tag = "1nn" if kk == 1 else "knn"
        ax.set_title(
            f"{kk}-NN ({p['distance'].upper()}): train {numbers[f'train_accuracy_{tag}']:.0%}, "
            f"test {numbers[f'test_accuracy_{tag}']:.0%}"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    image = png(fig)
    text = (
        f"{n} training points ({p['dataset']}). 1-NN memorises: train accuracy "
        f"{numbers['train_accuracy_1nn']:.0%} (every point is its own nearest neighbour), test "
        f"{numbers['test_accuracy_1nn']:.0%}, with islands around noisy points. {k}-NN votes and smooths the "
        f"boundary (more robust to outliers): train {numbers['train_accuracy_knn']:.0%}, test "
        f"{numbers['test_accuracy_knn']:.0%}. The boundary is not linear. Our torch k-NN agrees with "
        f"scikit-learn's KNeighborsClassifier on {numbers['agreement_with_sklearn']:.0%} of test points. "
        f"Training costs nothing; every prediction compares against all {n} points."
    )
    return DemoOutput(numbers, text, (image,))
