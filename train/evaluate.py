"""Evaluation on dev in the seed card's form, bias selection, confusion-matrix plot."""
import json
import os

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from common import LABELS


def metrics(y_true, y_pred):
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], average="macro",
                                                    zero_division=0)
    wp, wr, wf, _ = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], average="weighted",
                                                    zero_division=0)
    acc = float(np.mean(np.array(y_true) == np.array(y_pred)))
    return {
        "per_class": {LABELS[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                  "support": int(s[i])} for i in range(3)},
        "macro": {"precision": float(mp), "recall": float(mr), "f1": float(mf)},
        "weighted": {"precision": float(wp), "recall": float(wr), "f1": float(wf)},
        "accuracy": acc,
        "confusion": confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist(),
        "n": len(y_true),
    }


def macro_f1_grid(scores, y, grid):
    """Macro-F1 (and Extreme Hate F1) for every (Hate bias, Extreme Hate bias) pair on the grid."""
    y = np.asarray(y)
    G = len(grid)
    mf = np.zeros((G, G))
    ef = np.zeros((G, G))
    for a, bh in enumerate(grid):
        for b, be in enumerate(grid):
            pred = np.argmax(scores + np.array([0.0, bh, be]), axis=1)
            f1s = []
            for c in range(3):
                tp = np.sum((pred == c) & (y == c))
                fp = np.sum((pred == c) & (y != c))
                fn = np.sum((pred != c) & (y == c))
                f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
            mf[a, b] = np.mean(f1s)
            ef[a, b] = f1s[2]
    return mf, ef


def choose_bias(scores, y, lo=-3.0, hi=3.0, step=0.25):
    """Prior correction chosen on dev: maximise the 3x3-neighbourhood mean of macro-F1 on distinct dev
    comments (smoothing makes the choice less sensitive to dev noise than the raw argmax)."""
    grid = np.round(np.arange(lo, hi + 1e-9, step), 4)
    mf, ef = macro_f1_grid(np.asarray(scores), y, grid)
    pad = np.pad(mf, 1, mode="edge")
    smooth = sum(pad[i:i + len(grid), j:j + len(grid)] for i in range(3) for j in range(3)) / 9.0
    a, b = np.unravel_index(np.argmax(smooth), smooth.shape)
    z = list(grid).index(0.0)
    return {"Hate": float(grid[a]), "Extreme Hate": float(grid[b]),
            "dev_distinct_macro_f1": float(mf[a, b]), "smoothed_macro_f1": float(smooth[a, b]),
            "dev_distinct_extreme_f1": float(ef[a, b]), "zero_bias_macro_f1": float(mf[z, z]),
            "zero_bias_smoothed_macro_f1": float(smooth[z, z]),
            "grid": grid.tolist(), "macro_f1": mf.tolist()}


def fmt_table(m, title):
    lines = ["**%s** (n=%d, accuracy %.4f)" % (title, m["n"], m["accuracy"]), "",
             "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab in LABELS:
        c = m["per_class"][lab]
        lines.append("| %s | %.4f | %.4f | %.4f | %d |" % (lab, c["precision"], c["recall"], c["f1"], c["support"]))
    for k in ("macro", "weighted"):
        c = m[k]
        lines.append("| %s avg | %.4f | %.4f | %.4f | %d |" % (k, c["precision"], c["recall"], c["f1"], m["n"]))
    lines += ["", "Confusion matrix (rows = true, columns = predicted):", "",
              "| true \\ pred | " + " | ".join(LABELS) + " |", "|---|---|---|---|"]
    for i, lab in enumerate(LABELS):
        lines.append("| %s | %s |" % (lab, " | ".join(str(v) for v in m["confusion"][i])))
    return "\n".join(lines) + "\n"


def plot_confusions(m_rows, m_distinct, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, m, title in ((axes[0], m_rows, "dev rows"), (axes[1], m_distinct, "distinct dev comments")):
        cm = np.array(m["confusion"])
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(3):
            for j in range(3):
                ax.text(j, i, "%d\n%.2f" % (cm[i, j], norm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(3), LABELS)
        ax.set_yticks(range(3), LABELS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("%s: macro-F1 %.3f" % (title, m["macro"]["f1"]))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
