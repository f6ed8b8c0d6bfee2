"""Calibration of gemmaclf's label probabilities: probabilities = softmax((score + bias) / T).

The bias moves the arg-max (it is chosen for macro-F1, see evaluate.choose_bias); the temperature T
does not move it and is fitted afterwards, with the bias fixed, by minimising the negative
log-likelihood of the true labels (Guo et al. 2017, "On calibration of modern neural networks").
Expected calibration error (ECE) is the top-label one: |accuracy - mean confidence| per
equal-width confidence bin, weighted by the share of comments in the bin.
"""
import numpy as np

N_BINS = 15


def probs(scores, bias, temperature=1.0):
    x = (np.asarray(scores, dtype=np.float64) + np.asarray(bias, dtype=np.float64)) / temperature
    x -= x.max(1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(1, keepdims=True)


def nll(scores, y, bias, temperature):
    p = probs(scores, bias, temperature)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), np.asarray(y)], 1e-300))))


def fit_temperature(scores, y, bias, lo=0.05, hi=20.0):
    """T minimising the NLL (a 1-D convex problem in 1/T): coarse log grid, then golden section."""
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 121))
    vals = [nll(scores, y, bias, t) for t in grid]
    i = int(np.argmin(vals))
    a, b = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(scores, y, bias, np.exp(c)) < nll(scores, y, bias, np.exp(d)):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(np.exp((a + b) / 2))


def fit_bias_temperature(scores, y, iters=300, lr=0.05):
    """Bias (Not Hate fixed at 0) and T jointly minimising the NLL: the calibration-optimal bias,
    reported for comparison with the F1-optimal one (plain gradient descent on a convex-ish 3-D
    problem; small enough to be exact enough)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y)
    b = np.zeros(3)
    logt = 0.0
    for _ in range(iters):
        t = np.exp(logt)
        p = probs(s, b, t)
        oh = np.eye(3)[y]
        g = (p - oh) / len(y)                    # d NLL / d logits
        gb = g.sum(0) / t
        gb[0] = 0.0
        z = (s + b) / t
        glogt = -(g * z).sum()                   # d logits / d log T = -z
        b -= lr * 20 * gb
        logt -= lr * glogt
    return b.tolist(), float(np.exp(logt))


def ece(p, y, n_bins=N_BINS):
    p = np.asarray(p)
    y = np.asarray(y)
    conf = p.max(1)
    correct = (p.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    bins = []
    for k in range(n_bins):
        m = (conf > edges[k]) & (conf <= edges[k + 1]) if k else (conf >= 0) & (conf <= edges[1])
        if m.any():
            gap = abs(correct[m].mean() - conf[m].mean())
            total += m.mean() * gap
            bins.append({"lo": float(edges[k]), "hi": float(edges[k + 1]), "n": int(m.sum()),
                         "confidence": float(conf[m].mean()), "accuracy": float(correct[m].mean())})
    return float(total), bins


def classwise_ece(p, y, n_bins=N_BINS):
    """Mean over labels of the ECE of P(label) against 1[y == label] (thresholds act per label)."""
    p = np.asarray(p)
    y = np.asarray(y)
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for c in range(p.shape[1]):
        q = p[:, c]
        hit = (y == c).astype(float)
        idx = np.clip(np.digitize(q, edges[1:-1], right=True), 0, n_bins - 1)
        out.append(sum((idx == k).mean() * abs(hit[idx == k].mean() - q[idx == k].mean())
                       for k in range(n_bins) if (idx == k).any()))
    return float(np.mean(out)), [float(v) for v in out]


def summary(scores, y, bias, temperature):
    p = probs(scores, bias, temperature)
    e, bins = ece(p, y)
    cw, per = classwise_ece(p, y)
    return {"temperature": temperature, "nll": nll(scores, y, bias, temperature), "ece": e,
            "classwise_ece": cw, "classwise_ece_per_label": per, "bins": bins}


def reliability_plot(panels, path):
    """panels: list of (title, probs, y). Top-label reliability diagram per panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), squeeze=False)
    for ax, (title, p, y) in zip(axes[0], panels):
        e, bins = ece(p, y)
        mids = [(b["lo"] + b["hi"]) / 2 for b in bins]
        ax.bar(mids, [b["accuracy"] for b in bins], width=1.0 / N_BINS, edgecolor="black", alpha=0.7,
               label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "ro", ms=3,
                label="(mean confidence, accuracy)")
        for m, b in zip(mids, bins):
            ax.text(m, 0.02, str(b["n"]), rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top-label probability)")
        ax.set_ylabel("accuracy")
        ax.set_title("%s\nECE %.4f (%d bins)" % (title, e, N_BINS), fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
