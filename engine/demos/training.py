"""Demos that train or probe small models: lr finder, optimisers, activation stats, init, k-NN, grad check.

Sized for the per-demo budget on a 2-core CPU: the digits are 8x8, models are tiny, step counts bounded.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import BadParameter
from engine.plot import figure, png, styled
from engine.spec import DemoOutput

OPT_LABELS = {
    "sgd": "SGD",
    "momentum": "momentum",
    "nesterov": "Nesterov",
    "adagrad": "Adagrad",
    "rmsprop": "RMSProp",
    "adam": "Adam",
}


def _digits_tensors(device: str, seed: int):
    """Standardised digits split 80/20 with a seeded permutation."""
    from engine.demos.images import digits

    images, labels = digits()
    x = torch.from_numpy(images.reshape(len(images), -1))
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = torch.from_numpy(labels)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    tr, va = perm[:cut], perm[cut:]
    return x[tr].to(device), y[tr].to(device), x[va].to(device), y[va].to(device)


def _mlp(seed: int, device: str) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)


def _train_steps(model, opt, x, y, steps: int, bs: int, gen: torch.Generator, lrs=None) -> list[float]:
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


@styled
def lr_finder(p: dict, device: str) -> DemoOutput:
    lo, hi, steps, bs, seed = p["start_lr"], p["end_lr"], p["steps"], p["batch_size"], p["seed"]
    if hi <= lo * 10:
        raise BadParameter(f"lr_finder: end_lr must be at least 10x start_lr (got {lo:g} to {hi:g})")
    x, y, xv, yv = _digits_tensors(device, seed)
    lrs = lo * (hi / lo) ** (np.arange(steps) / (steps - 1))
    model = _mlp(seed, device)
    opt = torch.optim.SGD(model.parameters(), lr=lo, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    raw, smooth, avg = [], [], 0.0
    for i in range(steps):
        for g in opt.param_groups:
            g["lr"] = float(lrs[i])
        idx = torch.randint(0, len(x), (bs,), generator=gen).to(device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        v = loss.item()
        if not math.isfinite(v):
            break
        avg = 0.9 * avg + 0.1 * v
        raw.append(v)
        smooth.append(avg / (1 - 0.9 ** (i + 1)))
        if i > 10 and smooth[-1] > 4 * min(smooth):  # diverged: the rest of the sweep adds nothing
            break
    n = len(smooth)
    s = np.array(smooth)
    used = lrs[:n]
    i_min = int(s.argmin())
    lr_min = float(used[i_min])
    slope = np.gradient(s, np.log10(used))
    window = slice(0, max(i_min, 2))
    i_steep = int(np.argmin(slope[window]))
    suggested = lr_min / 10
    # check the suggestion the other way: a short real training run at it, vs 10x the min-loss lr
    gen2 = torch.Generator().manual_seed(seed + 1)
    results = {}
    for label, lr in (("suggested", suggested), ("min_loss_lr_x10", lr_min * 10)):
        m = _mlp(seed, device)
        o = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
        ls = _train_steps(m, o, x, y, 60, bs, gen2)
        with torch.no_grad():
            acc = (m(xv).argmax(1) == yv).float().mean().item() if math.isfinite(ls[-1]) else 0.0
        results[label] = {
            "lr": lr,
            "final_loss": ls[-1] if math.isfinite(ls[-1]) else None,
            "val_accuracy": acc,
        }
    numbers = {
        "suggested_lr": suggested,
        "lr_min_loss": lr_min,
        "lr_steepest": float(used[i_steep]),
        "min_loss": float(s.min()),
        "steps_run": n,
        "check_60_steps": results,
    }

    fig = figure(8.5, 3.9)
    ax = fig.subplots()
    ax.semilogx(used, raw, color="#1f77b4", alpha=0.3, linewidth=1, label="loss per batch")
    ax.semilogx(used, s, color="#1f77b4", linewidth=2.2, label="smoothed loss")
    ax.axvline(lr_min, color="#7f7f7f", linestyle=":", label=f"min loss @ {lr_min:.2g}")
    ax.axvline(suggested, color="#d62728", linewidth=2, label=f"min/10 = {suggested:.2g}")
    ax.plot(
        used[i_steep], s[i_steep], "o", color="#2ca02c", markersize=9, label=f"steepest @ {used[i_steep]:.2g}"
    )
    ax.set_ylim(0, min(max(s) * 1.1, 4 * s.min() + 3))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate finder: MLP on the 8x8 digits")
    ax.legend(loc="upper left")
    image = png(fig)
    chk = results["suggested"]
    text = (
        f"One mini-batch per learning rate, growing exponentially from {lo:g} to {hi:g}; the loss falls, "
        f"bottoms out at lr ≈ {lr_min:.2g}, then explodes. Rules of thumb: one order of magnitude below the "
        f"minimum (**{suggested:.2g}**) or the steepest descent ({used[i_steep]:.2g}). Check: 60 steps of real "
        f"training at {suggested:.2g} reach val accuracy {chk['val_accuracy']:.0%}; at 10x the minimum "
        f"({lr_min * 10:.2g}) they reach {results['min_loss_lr_x10']['val_accuracy']:.0%}."
    )
    return DemoOutput(numbers, text, (image,))


# -- optimisers on a 2-D surface -----------------------------------------------------------------------------
SURFACES = {
    "ravine": (lambda x, y: 0.1 * x**2 + 2 * y**2, (-4.0, 1.5), (0.0, 0.0), ((-4.6, 1.5), (-2.2, 2.2))),
    "bowl": (lambda x, y: 0.5 * (x**2 + y**2), (-4.0, 3.0), (0.0, 0.0), ((-4.6, 1.5), (-2.0, 3.6))),
    "rosenbrock": (
        lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
        (-1.5, 2.0),
        (1.0, 1.0),
        ((-2.0, 2.0), (-1.0, 3.0)),
    ),
}
DEFAULT_LR = {
    "ravine": {"sgd": 0.4, "momentum": 0.04, "nesterov": 0.04, "adagrad": 1.0, "rmsprop": 0.05, "adam": 0.3},
    "bowl": {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 1.0, "rmsprop": 0.05, "adam": 0.3},
    "rosenbrock": {
        "sgd": 0.001,
        "momentum": 0.0003,
        "nesterov": 0.0003,
        "adagrad": 0.5,
        "rmsprop": 0.01,
        "adam": 0.1,
    },
}


def _torch_opt(name: str, params, lr: float, mu: float):
    optim = torch.optim
    return {
        "sgd": lambda: optim.SGD(params, lr=lr),
        "momentum": lambda: optim.SGD(params, lr=lr, momentum=mu),
        "nesterov": lambda: optim.SGD(params, lr=lr, momentum=mu, nesterov=True),
        "adagrad": lambda: optim.Adagrad(params, lr=lr),
        "rmsprop": lambda: optim.RMSprop(params, lr=lr, alpha=0.99),
        "adam": lambda: optim.Adam(params, lr=lr),
    }[name]()


def _numpy_path(name: str, f, start, lr: float, mu: float, steps: int) -> np.ndarray:
    """The CS231n update rules written out by hand (numerical gradient-free: autograd only for dx)."""
    x = np.array(start, dtype=np.float64)
    v, cache, m = np.zeros(2), np.zeros(2), np.zeros(2)

    def grad(z):
        zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        f(zt[0], zt[1]).backward()
        return zt.grad.numpy()

    path = [x.copy()]
    for t in range(1, steps + 1):
        dx = grad(x)
        if name == "sgd":
            x = x - lr * dx
        elif name == "momentum":
            v = mu * v - lr * dx  # integrate velocity
            x = x + v  # integrate position
        elif name == "nesterov":
            v_prev = v
            v = mu * v - lr * dx
            x = x - mu * v_prev + (1 + mu) * v
        elif name == "adagrad":
            cache = cache + dx**2
            x = x - lr * dx / (np.sqrt(cache) + 1e-10)
        elif name == "rmsprop":
            cache = 0.99 * cache + 0.01 * dx**2
            x = x - lr * dx / (np.sqrt(cache) + 1e-8)
        else:
            m = 0.9 * m + 0.1 * dx
            cache = 0.999 * cache + 0.001 * dx**2
            x = x - lr * (m / (1 - 0.9**t)) / (np.sqrt(cache / (1 - 0.999**t)) + 1e-8)
        path.append(x.copy())
    return np.array(path)


@styled
def optimizers(p: dict, device: str) -> DemoOutput:
    surface, steps, mu = p["surface"], p["steps"], p["momentum"]
    f, start, opt_xy, ((x0, x1), (y0, y1)) = SURFACES[surface]
    paths, finals, lrs, diffs = {}, {}, {}, {}
    for name in p["optimizers"]:
        lr = p["lr"] if p["lr"] is not None else DEFAULT_LR[surface][name]
        lrs[name] = lr
        z = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = _torch_opt(name, [z], lr, mu)
        path = [z.detach().clone().numpy()]
        for _ in range(steps):
            opt.zero_grad()
            f(z[0], z[1]).backward()
            opt.step()
            path.append(z.detach().clone().numpy())
            if not torch.isfinite(z).all() or z.abs().max() > 1e6:
                break
        path = np.array(path)
        paths[name] = path
        final = float(f(*path[-1]))
        finals[name] = final if math.isfinite(final) else None
        if len(path) == steps + 1 and steps <= 400:
            ref = _numpy_path(name, f, start, lr, mu, steps)
            diffs[name] = float(np.abs(ref - path).max())
    numbers = {
        "final_loss": finals,
        "lr": lrs,
        "start": list(start),
        "minimum": list(opt_xy),
        "max_diff_vs_handwritten": diffs,
        "best": min((v, k) for k, v in finals.items() if v is not None)[1]
        if any(v is not None for v in finals.values())
        else None,
    }

    fig = figure(10.5, 4.2)
    axs = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    gz = f(gx, gy)
    levels = np.geomspace(max(gz.min(), 1e-3), gz.max(), 18)
    axs[0].contour(gx, gy, gz, levels=levels, colors="#999999", linewidths=0.7)
    axs[0].plot(*opt_xy, "*", color="black", markersize=13)
    for name, path in paths.items():
        axs[0].plot(path[:, 0], path[:, 1], "-o", markersize=2.2, linewidth=1.6, label=OPT_LABELS[name])
        axs[1].semilogy(
            np.arange(len(path)),
            np.maximum([f(*q) for q in path], 1e-12),
            linewidth=1.8,
            label=f"{OPT_LABELS[name]} (lr {lrs[name]:g})",
        )
    axs[0].set_xlim(x0, x1)
    axs[0].set_ylim(y0, y1)
    axs[0].set_title(f"Trajectories on the {surface} surface")
    axs[0].legend(loc="upper right", fontsize=8.5)
    axs[1].set_title("loss vs step")
    axs[1].set_xlabel("step")
    axs[1].legend(loc="lower left", fontsize=8.5)
    image = png(fig)
    ranking = ", ".join(
        f"{OPT_LABELS[k]} {v:.2g}"
        for k, v in sorted(finals.items(), key=lambda kv: kv[1] or 1e99)
        if v is not None
    )
    agree = max(diffs.values()) if diffs else None
    text = (
        f"{steps} steps from {start} on the {surface} surface; final loss: {ranking}. Plain SGD zig-zags "
        f"across the steep direction while crawling along the shallow one; momentum integrates velocity "
        f"(v = μv − lr·dx, x += v; μ={mu:g} acts as friction) and builds speed along the valley; Adagrad "
        f"divides by the root of the summed squared gradients, so its steps keep shrinking; RMSProp uses a "
        f"leaky average instead, so they don't; Adam adds momentum to RMSProp."
        + (f" torch.optim matches the hand-written update rules to {agree:.1e}." if agree is not None else "")
    )
    return DemoOutput(numbers, text, (image,))


# -- activation statistics ----------------------------------------------------------------------------------
def _cnn(bn: bool, seed: int, device: str) -> tuple[nn.Module, list[nn.Module]]:
    torch.manual_seed(seed)
    layers, relus, cin = [], [], 1
    for cout, stride in ((8, 1), (16, 2), (32, 2)):
        layers.append(nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        relu = nn.ReLU()
        relus.append(relu)
        layers.append(relu)
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers).to(device), relus


@styled
def activation_stats(p: dict, device: str) -> DemoOutput:
    steps, lr, bs, seed = p["steps"], p["lr"], p["batch_size"], p["seed"]
    x, y, xv, yv = _digits_tensors(device, seed)
    x, xv = x.view(-1, 1, 8, 8), xv.view(-1, 1, 8, 8)
    variants = {"both": (False, True), "with": (True,), "without": (False,)}[p["batchnorm"]]
    runs = {}
    bn_check = None
    for bn in variants:
        model, relus = _cnn(bn, seed, device)
        stats = {i: {"mean": [], "std": [], "near_zero": [], "hist": []} for i in range(len(relus))}

        def hook(i, stats=stats):
            def fn(_m, _inp, out):
                o = out.detach().float()
                stats[i]["mean"].append(o.mean().item())
                stats[i]["std"].append(o.std().item())
                stats[i]["near_zero"].append((o <= 0.05).float().mean().item() * 100)
                stats[i]["hist"].append(o.histc(40, 0, 10).cpu().numpy())

            return fn

        handles = [r.register_forward_hook(hook(i)) for i, r in enumerate(relus)]
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        gen = torch.Generator().manual_seed(seed)
        if bn:  # independent check of what batchnorm does: per-channel batch mean 0, std 1 before gamma/beta
            with torch.no_grad():
                z = model[1](model[0](x[:bs]))
                bn_check = {
                    "mean": float(z.mean((0, 2, 3)).abs().max()),
                    "std_dev_from_1": float((z.std((0, 2, 3), unbiased=False) - 1).abs().max()),
                }
        losses = _train_steps(model, opt, x, y, steps, bs, gen)
        for h in handles:
            h.remove()
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item() if math.isfinite(losses[-1]) else 0.0
        runs["batchnorm" if bn else "plain"] = {"stats": stats, "losses": losses, "acc": acc}
    tail = max(1, steps // 10)
    near = {
        k: float(np.nanmean([np.mean(s["near_zero"][-tail:]) for s in r["stats"].values()]))
        for k, r in runs.items()
    }
    numbers = {
        "near_zero_pct": near,
        "val_accuracy": {k: r["acc"] for k, r in runs.items()},
        "final_loss": {
            k: (r["losses"][-1] if math.isfinite(r["losses"][-1]) else None) for k, r in runs.items()
        },
        "last_layer_std": {k: float(np.mean(r["stats"][2]["std"][-tail:])) for k, r in runs.items()},
    }
    if bn_check:
        numbers["batchnorm_check"] = bn_check

    fig = figure(11, 4.0, layout=None)  # fixed margins: constrained layout measures every tick label
    axs = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.05, right=0.99, top=0.91, bottom=0.21, wspace=0.22)
    styles = {"plain": "-", "batchnorm": "--"}
    for k, r in runs.items():
        for i, s in r["stats"].items():
            for ax, key in zip(axs, ("mean", "std", "near_zero"), strict=True):
                ax.plot(s[key], styles[k], color=f"C{i}", linewidth=1.6, label=f"{k} · relu {i + 1}")
    for ax, title in zip(axs, ("mean", "std", "% near zero (≤ 0.05)"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("batch")
    axs[2].set_ylim(0, 100)
    # one legend for the three panels, in a row under them: inside a panel it hid a spike of the curves
    handles, labels = axs[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8.5, frameon=False)
    img1 = png(fig)

    fig = figure(10, 3.6, layout=None)
    axs = fig.subplots(1, len(runs), squeeze=False)[0]
    fig.subplots_adjust(left=0.06, right=0.975, top=0.86, bottom=0.14, wspace=0.18)
    for ax, (k, r) in zip(axs, runs.items(), strict=True):
        h = np.stack(r["stats"][2]["hist"]).T
        ax.imshow(np.log1p(h), origin="lower", aspect="auto", cmap="viridis", extent=(0, len(h[0]), 0, 10))
        # the numbers go in the title: the heatmap fills the axes, so a box in it would hide data
        ax.set_title(f"color_dim, last ReLU: {k}\n{near[k]:.0f}% near zero, val acc {r['acc']:.0%}")
        ax.set_xlabel("batch")
        ax.set_ylabel("activation value")
        ax.grid(False)
    img2 = png(fig)
    lines = "; ".join(f"{k}: {near[k]:.0f}% near zero, val accuracy {r['acc']:.0%}" for k, r in runs.items())
    text = (
        f"A 3-conv CNN trained {steps} steps on the digits at lr {lr:g} (high on purpose). {lines}. "
        f"Like fastai's ActivationStats, each ReLU's mean, std and share of activations near zero is recorded "
        f"every batch; activations near zero do no computation, and zeros in one layer breed zeros in the next. "
        f"In color_dim each column is the (log) histogram of one batch's activations: smooth growth is good, "
        f"collapses back to the bottom are 'bad training'. Batchnorm normalises each channel with the batch's "
        f"own mean and std"
        + (
            f" (checked: channel means within {bn_check['mean']:.1e} of 0, stds within "
            f"{bn_check['std_dev_from_1']:.1e} of 1)"
            if bn_check
            else ""
        )
        + " and then learns gamma and beta, so high learning rates stay trainable."
    )
    return DemoOutput(numbers, text, (img1, img2))


# -- weight initialisation ---------------------------------------------------------------------------------
def _mean_field(act: str, sigma_w: float, width: int, depth: int) -> list[float]:
    """Predicted post-activation std per layer: q_l = σ_w²·n·E[φ(h_{l-1})²], h ~ N(0, q) (Gauss-Hermite)."""
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    phi = np.tanh if act == "tanh" else (lambda v: np.maximum(v, 0))
    second = 1.0  # E[x²] of the unit-gaussian input
    out = []
    for _ in range(depth):
        q = sigma_w**2 * width * second
        a = phi(math.sqrt(q) * z)
        mean, second = float((w * a).sum()), float((w * a**2).sum())
        out.append(math.sqrt(max(second - mean**2, 0.0)))
    return out


@styled
def weight_init(p: dict, device: str) -> DemoOutput:
    act, depth, width, seed = p["activation"], p["depth"], p["width"], p["seed"]
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(500, width, generator=g)
    sigmas = {"small": 0.01, "xavier": 1 / math.sqrt(width), "he": math.sqrt(2 / width)}
    phi = torch.tanh if act == "tanh" else torch.relu
    stds, preds, hists = {}, {}, {}
    for scheme in p["schemes"]:
        h, s, hs = x0.to(device), [], []
        for _ in range(depth):
            w = torch.empty(width, width)
            if scheme == "small":
                w.normal_(0, 0.01, generator=g)
            elif scheme == "xavier":
                nn.init.xavier_normal_(w, generator=g)
            else:
                nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
            h = phi(h @ w.to(device))
            s.append(h.std().item())
            hs.append(h.flatten()[:20000].cpu().numpy())
        stds[scheme], hists[scheme] = s, hs
        preds[scheme] = _mean_field(act, sigmas[scheme], width, depth)
    last = {k: v[-1] for k, v in stds.items()}
    numbers = {
        "last_layer_std": last,
        "predicted_last_layer_std": {k: v[-1] for k, v in preds.items()},
        "per_layer_std": stds,
        "weight_std": {k: sigmas[k] for k in stds},
    }

    fig = figure(8, 3.8)
    ax = fig.subplots()
    names = {"small": "N(0, 0.01²)", "xavier": "Xavier 1/√n", "he": "He √(2/n)"}
    for i, (k, s) in enumerate(stds.items()):
        ax.semilogy(range(1, depth + 1), s, "o-", color=f"C{i}", linewidth=2, label=f"{names[k]} (measured)")
        ax.semilogy(range(1, depth + 1), np.maximum(preds[k], 1e-300), ":", color=f"C{i}", linewidth=1.6)
    ax.set_xlabel("layer")
    ax.set_ylabel("activation std (log)")
    ax.set_title(f"{depth}-layer {act} MLP, width {width}: std per layer (dotted = mean-field theory)")
    ax.legend(loc="lower left")
    img1 = png(fig)

    cols = sorted({0, depth // 4, depth // 2, (3 * depth) // 4, depth - 1})
    fig = figure(10, 1.6 + 1.6 * len(stds), layout=None)
    axs = fig.subplots(len(stds), len(cols), squeeze=False)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.08, hspace=0.45, wspace=0.15)
    fig.suptitle(f"Activation histograms per layer ({act})", fontsize=11.5, fontweight="bold")
    rng = (-1, 1) if act == "tanh" else (0, 3)
    for r, (k, hs) in enumerate(hists.items()):
        for c, layer in enumerate(cols):
            ax = axs[r][c]
            counts, edges = np.histogram(hs[layer], bins=40, range=rng)
            ax.stairs(counts, edges, fill=True, color=f"C{r}")
            ax.set_yticks([])
            ax.tick_params(labelsize=8)
            if r == 0:
                ax.set_title(f"layer {layer + 1}", fontsize=10)
            if c == 0:
                ax.set_ylabel(names[k], fontsize=9)
    img2 = png(fig)
    summary = ", ".join(f"{names[k]} {v:.2g}" for k, v in last.items())
    text = (
        f"Unit-gaussian data through {depth} {act} layers of width {width}. Std of the last layer: {summary} "
        f"(mean-field prediction: " + ", ".join(f"{v[-1]:.2g}" for v in preds.values()) + "). With weights "
        f"N(0, 0.01²) each layer multiplies the std by about 0.01·√{width} < 1, so activations collapse to 0 "
        f"and so do gradients; too large and tanh saturates at ±1. Scaling by 1/√n (Xavier) keeps a tanh net's "
        f"variance roughly stable; ReLU halves the variance, which He's √(2/n) compensates. The variance of a "
        f"random neuron's output grows with its number of inputs — that is what these scales undo."
    )
    return DemoOutput(numbers, text, (img1, img2))


# -- k-nearest neighbours ----------------------------------------------------------------------------------
def _knn_predict(train_x, train_y, q, k: int, p_norm: float) -> torch.Tensor:
    d = torch.cdist(q, train_x, p=p_norm)
    idx = d.topk(k, largest=False).indices
    votes = F.one_hot(train_y[idx], 2).sum(1)
    return votes.argmax(1)  # ties go to the lower label, as in scikit-learn


@styled
def knn(p: dict, device: str) -> DemoOutput:
    from sklearn import datasets
    from sklearn.neighbors import KNeighborsClassifier

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


# -- gradient check ----------------------------------------------------------------------------------------
SHAPES = ((5, 6), (6,), (6, 3), (3,))


def _batched_loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss of a small tanh net for a batch of flat parameter vectors theta (B, P) -> (B,)."""
    parts, i = [], 0
    for s in SHAPES:
        n = math.prod(s)
        parts.append(theta[:, i : i + n].reshape(-1, *s))
        i += n
    w1, b1, w2, b2 = parts
    logits = torch.tanh(x @ w1 + b1[:, None]) @ w2 + b2[:, None]
    logp = torch.log_softmax(logits, -1)
    return -logp.gather(-1, y.expand(len(theta), -1)[..., None])[..., 0].mean(-1)


def _grad_check(dtype: torch.dtype, h: float, seed: int) -> tuple[float, int]:
    """Max relative error between autograd and centred differences over every parameter (all 2P loss
    evaluations in one batched call)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randint(0, 3, (8,), generator=g)
    n = sum(math.prod(s) for s in SHAPES)
    theta = torch.randn(n, generator=g, dtype=torch.float64).to(dtype)
    t = theta.clone().requires_grad_()
    _batched_loss(t[None], x, y).sum().backward()
    analytic = t.grad
    eye = torch.eye(n, dtype=dtype) * h
    with torch.no_grad():
        fp = _batched_loss(theta[None] + eye, x, y)
        fm = _batched_loss(theta[None] - eye, x, y)
    numeric = (fp - fm) / (2 * h)
    denom = torch.maximum(numeric.abs(), analytic.abs())
    rel = torch.where(
        denom > 0, (numeric - analytic).abs() / denom.clamp_min(1e-300), torch.zeros_like(denom)
    )
    return float(rel.max()), 2 * n


@styled
def gradient_check(p: dict, device: str) -> DemoOutput:
    h, seed = p["h"], p["seed"]
    dtype = torch.float64 if p["dtype"] == "float64" else torch.float32
    rel, evals = _grad_check(dtype, h, seed)
    hs = np.geomspace(1e-10, 1e-1, 19)
    sweep = {
        dt: [_grad_check(t, float(hh), seed)[0] for hh in hs]
        for dt, t in (("float64", torch.float64), ("float32", torch.float32))
    }
    # the kink: relu at x just left of 0; a centred difference straddles the kink when h > |x|
    kx = p["kink_x"]
    xt = torch.tensor(kx, dtype=torch.float64, requires_grad=True)
    F.relu(xt).backward()
    kink_ana = xt.grad.item()
    kink_num = (max(kx + h, 0) - max(kx - h, 0)) / (2 * h)
    kink_rel = abs(kink_num - kink_ana) / max(abs(kink_num), abs(kink_ana), 1e-300)
    numbers = {
        "relative_error": rel,
        "h": h,
        "dtype": p["dtype"],
        "loss_evaluations": evals,
        "kink_x": kx,
        "kink_numeric": kink_num,
        "kink_analytic": kink_ana,
        "kink_relative_error": kink_rel,
        "crosses_kink": kx - h < 0 < kx + h or kx + h < 0 < kx - h,
        "best_h_float64": float(hs[int(np.argmin(sweep["float64"]))]),
    }

    fig = figure(10.5, 3.9)
    axs = fig.subplots(1, 2)
    for i, (dt, errs) in enumerate(sweep.items()):
        axs[0].loglog(hs, np.maximum(errs, 1e-13), "o-", color=f"C{i}", linewidth=1.8, label=dt)
    axs[0].plot(
        [h], [max(rel, 1e-13)], "*", color="black", markersize=14, label=f"your h={h:g} ({p['dtype']})"
    )
    axs[0].axhspan(1e-13, 1e-7, color="#2ca02c", alpha=0.08)
    axs[0].set_ylim(1e-13, 10)
    axs[0].set_xlabel("step h")
    axs[0].set_ylabel("max relative error")
    axs[0].set_title("Numerical vs analytic gradient (tanh net)")
    axs[0].legend(loc="lower left", fontsize=8.5)  # below every curve: float32 runs along the top left
    span = max(3 * abs(kx), 3 * h)
    xs = np.linspace(kx - span, kx + span, 200)
    axs[1].plot(xs, np.maximum(xs, 0), color="#1f77b4", linewidth=2, label="ReLU")
    axs[1].plot(
        [kx - h, kx + h],
        [max(kx - h, 0), max(kx + h, 0)],
        "o--",
        color="#d62728",
        linewidth=1.6,
        label=f"centred difference: slope {kink_num:.2g}",
    )
    axs[1].plot([kx], [max(kx, 0)], "k*", markersize=12, label=f"x = {kx:g}: true slope {kink_ana:g}")
    axs[1].set_title("The kink: x ± h crosses 0")
    axs[1].ticklabel_format(style="sci", scilimits=(-3, 3))
    axs[1].legend(loc="upper left", fontsize=8.5)
    image = png(fig)
    verdict = "excellent (< 1e-7)" if rel < 1e-7 else ("acceptable" if rel < 1e-4 else "suspicious")
    text = (
        f"Centred differences (f(x+h) − f(x−h))/2h for all {evals // 2} parameters of a small tanh net "
        f"({evals} loss evaluations for one gradient — the numerical gradient costs one pass per parameter) "
        f"against autograd: max relative error **{rel:.2e}** in {p['dtype']} at h={h:g}, {verdict}. Too large "
        f"an h gives truncation error, too small round-off (float32 bottoms out much higher). At a kink the "
        f"check fails for a different reason: ReLU at x={kx:g} has gradient {kink_ana:g}, but with h={h:g} the "
        f"two probes straddle 0 and the numerical slope is {kink_num:.3g} (relative error {kink_rel:.2g})."
    )
    return DemoOutput(numbers, text, (image,))
