"""The analyses behind train/runs.md's reference-model, ensemble and bias-transfer tables, from the
data and from fold runs' val_scores.npz (nothing here is part of the recipe).

    train/fold_analysis.py baselines                       # TF-IDF models on the 5 folds and dev
    train/fold_analysis.py ensemble DIR [DIR ...] [--tfidf W] [--spec 2+3]
    train/fold_analysis.py bias-transfer FOLD_A_DIR FOLD_B_DIR
    train/fold_analysis.py mix-bias DIR [DIR ...] [--spec 3] [--weights 0.4,0.5,0.6]
    train/fold_analysis.py served-ensemble A0,B0[,...] [A1,B1[,...] ...] [--spec 3] [--weights ...]
    train/fold_analysis.py served DIR [DIR ...] --weight W [--temperature T] [--vs DIR ...] [--spec 3]
DIR = a fold run's output (cv.json, val_scores.npz); served-ensemble takes per fold its members' fold
runs, comma-joined, and mixes their mean with the n-gram head as gemmaclf serves. Scores are combined as the mean of the members'
label log-probabilities; with --tfidf W the class-balanced TF-IDF model trained on the other folds
weighs W and the Gemma mean 1 - W.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calibrate  # noqa: E402
import evaluate as ev  # noqa: E402
import teacher  # noqa: E402
from common import LABELS, distinct, fold_split, load_split, norm_text, squeeze_comment  # noqa: E402


def log_probs(s):
    s = np.asarray(s, dtype=np.float64)
    s = s - s.max(1, keepdims=True)
    return s - np.log(np.exp(s).sum(1, keepdims=True))


def show(name, scores, y, bias=None):
    """macro-F1 / Extreme Hate F1 without bias, and at the bias given or else chosen on these scores."""
    m0 = ev.metrics(y, np.argmax(scores, 1).tolist())
    if bias is None:
        c = ev.choose_bias(scores, y)
        bias = [0.0, c["Hate"], c["Extreme Hate"]]
    m = ev.metrics(y, np.argmax(scores + np.array(bias), 1).tolist())
    print("%-48s no bias %.4f / %.4f   bias %s: %.4f / %.4f" % (
        name, m0["macro"]["f1"], m0["per_class"]["Extreme Hate"]["f1"], [round(b, 2) for b in bias[1:]], m["macro"]["f1"],
        m["per_class"]["Extreme Hate"]["f1"]))


def labels(rows):
    return [LABELS.index(r["label"]) for r in rows]


def tfidf_scores(train, test, **kw):
    return np.log(np.maximum(teacher.predict(teacher.fit(train, **kw), [r["text"] for r in test]), 1e-12))


def baselines():
    for k in range(5):
        tr, va = fold_split(k)
        show("fold %d: TF-IDF, class-balanced" % k, tfidf_scores(tr, va, balanced=True), labels(va), [0, 0, 0])
    tr, va = fold_split(0)
    y = labels(va)
    for c in (1, 3, 10, 30):
        s = tfidf_scores(tr, va, c=c)
        print("fold 0: teacher (not balanced), C=%g: NLL %.4f" % (c, -np.mean(s[np.arange(len(y)), y])))
        show("  C=%g" % c, s, y, [0, 0, 0])
    for kinds in (("chars",), ("words",)):
        show("fold 0: %s only" % kinds[0], tfidf_scores(tr, va, kinds=kinds), y, [0, 0, 0])
    dev = distinct(load_split("dev"))
    show("dev: TF-IDF, class-balanced, on all of train", tfidf_scores(tr + va, dev, balanced=True), labels(dev),
         [0, 0, 0])


def ensemble(dirs, w, spec):
    data = [np.load(os.path.join(d, "val_scores.npz")) for d in dirs]
    fold = json.load(open(os.path.join(dirs[0], "cv.json")))["fold"]
    y = data[0]["y"].tolist()
    s = sum(log_probs(d["scores_" + spec]) for d in data) / len(data)
    if w > 0:
        tr, va = fold_split(fold)
        assert labels(va) == y, "the fold runs' comments are not this fold's"
        s = w * tfidf_scores(tr, va, balanced=True) + (1 - w) * s
    show("fold %d: %d Gemma run(s)%s" % (fold, len(dirs), " + %.2f TF-IDF" % w if w else ""), s, y)


def bias_transfer(a_dir, b_dir):
    for spec in ("3", "2+3"):
        for src, dst in ((a_dir, b_dir), (b_dir, a_dir)):
            a, b = np.load(os.path.join(src, "val_scores.npz")), np.load(os.path.join(dst, "val_scores.npz"))
            sa, ya, sb, yb = a["scores_" + spec], a["y"].tolist(), b["scores_" + spec], b["y"].tolist()
            c = ev.choose_bias(sa, ya)
            grid = [0.0, c["Hate"], c["Extreme Hate"]]
            nll, _ = calibrate.fit_bias_temperature(sa, ya)
            tag = "%s: %s -> %s" % (spec, os.path.basename(os.path.dirname(src + "/")), dst)
            show(tag + " grid", sb, yb, grid)
            show(tag + " NLL-optimal", sb, yb, nll)


MIX_BIASES = ((0, 0), (0, 0.25), (0, 0.5), (0, 0.75), (0, 1.0), (0.25, 0.5), (0.25, 0.75), (0.5, 1.0))


def mix_bias(dirs, spec, weights):
    """Served scores (Gemma + n-gram head, the head refitted on each fold's training comments) with a
    grid of (Hate, Extreme Hate) score biases: does any bias raise Extreme Hate F1 on every fold?"""
    import ngram_head
    runs = [(s, lp, y) for _, _, s, lp, y in ngram_head.fold_mix_inputs(dirs, spec)]
    for w in weights:
        for bh, be in MIX_BIASES:
            cells, pp, py = [], [], []
            for s, lp, y in runs:
                p = np.argmax(ngram_head.combine(s, lp, w) + np.array([0.0, bh, be]), 1).tolist()
                m = ev.metrics(y, p)
                cells.append("%.4f / %.4f" % (m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"]))
                pp, py = pp + p, py + y
            m = ev.metrics(py, pp)
            print("w %.1f bias (%.2f, %.2f): %s | pooled %.4f / %.4f" % (
                w, bh, be, " | ".join(cells), m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"]))


def served(dirs, spec, weight, temperature, vs):
    """Fold runs scored as gemmaclf serves them (the head refitted on each fold's training comments,
    weight w, no bias, temperature T): per fold macro-F1 / Extreme Hate F1, accuracy and ECE, and the
    scores without the validation comments that have a twin in the training folds once both are
    squeezed (squeezing can merge comments of different groups); the mean ± sd (s.e.) over the runs.
    With --vs (as many fold runs, fold for fold): the per-run differences, mean ± s.e."""
    import statistics as st
    import ngram_head

    def table(ds):
        out = []
        for d, fold, s, lp, y in ngram_head.fold_mix_inputs(ds, spec):
            tr, va = fold_split(fold, json.load(open(os.path.join(d, "cv.json")))["n_folds"])
            twins = set(norm_text(squeeze_comment(r["text"])) for r in tr)
            lone = np.array([norm_text(squeeze_comment(r["text"])) not in twins for r in va])
            mix = ngram_head.combine(s, lp, weight)
            p, yy = np.argmax(mix, 1), np.array(y)
            m, m1 = ev.metrics(y, p.tolist()), ev.metrics(yy[lone].tolist(), p[lone].tolist())
            ece = calibrate.ece(calibrate.probs(mix, [0.0] * len(LABELS), temperature), y)[0]
            row = (m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"], m["accuracy"], ece,
                   m1["macro"]["f1"], m1["per_class"]["Extreme Hate"]["f1"])
            print("%s (fold %d): %.4f / %.4f, accuracy %.4f, ECE %.4f | without the %d twins (%d Extreme Hate): "
                  "%.4f / %.4f" % (d, fold, *row[:4], (~lone).sum(), (yy[~lone] == 2).sum(), *row[4:]))
            out.append(row)
        return out

    def mean_sd(vals):
        sd = st.stdev(vals) if len(vals) > 1 else 0.0
        return "%.4f ± %.4f (s.e. %.4f)" % (st.mean(vals), sd, sd / len(vals) ** 0.5)

    names = ("macro-F1", "Extreme Hate F1", "accuracy", "ECE", "macro-F1 without twins", "Extreme Hate F1 without twins")
    train_keys = set(norm_text(squeeze_comment(r["text"])) for r in distinct(load_split("train")))
    dev = [r for r in distinct(load_split("dev")) if norm_text(squeeze_comment(r["text"])) in train_keys]
    print("for comparison, the data set's own split: %d distinct dev comments have a twin in train" % len(dev))
    rows = table(dirs)
    for k, name in enumerate(names):
        print("%s: %s" % (name, mean_sd([r[k] for r in rows])))
    if vs:
        base = table(vs)
        assert len(base) == len(rows), "--vs needs as many fold runs"
        for k, name in enumerate(names):
            d = [r[k] - b[k] for r, b in zip(rows, base)]
            print("difference in %s: %+.4f ± %.4f (mean ± s.e.), higher on %d of %d" % (
                name, st.mean(d), st.stdev(d) / len(d) ** 0.5 if len(d) > 1 else 0.0, sum(x > 0 for x in d), len(d)))


def served_ensemble(folds, spec, weights):
    """Several Gemma models served with the n-gram head: per fold (FOLD = the members' fold runs,
    comma-joined) the mean of the members' label log-softmax, mixed with the head (refitted on the
    fold's training comments) as gemmaclf mixes one model: (1 - w) mean + w head. Prints each member
    and the ensemble per fold and pooled, macro-F1 / Extreme Hate F1 at bias 0."""
    import ngram_head
    rows = {}
    for f in folds:
        members = ngram_head.fold_mix_inputs(f.split(","), spec)
        y, lp = members[0][4], members[0][3]
        assert all(m[4] == y for m in members), "%s: the members' folds differ" % f
        for i, m in enumerate(members):
            rows.setdefault("member %d (%s)" % (i, os.path.basename(os.path.dirname(os.path.normpath(m[0])))), []).append(
                (m[2], lp, y))
        mean = sum(log_probs(m[2]) for m in members) / len(members)
        rows.setdefault("mean of %d" % len(members), []).append((mean, lp, y))
    for w in weights:
        for name, per in rows.items():
            cells, pp, py = [], [], []
            for sc, lp, y in per:
                p = np.argmax(ngram_head.combine(sc, lp, w), 1).tolist()
                m = ev.metrics(y, p)
                cells.append("%.4f / %.4f" % (m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"]))
                pp, py = pp + p, py + y
            m = ev.metrics(py, pp)
            print("w %.1f %-28s %s | pooled %.4f / %.4f" % (
                w, name, " | ".join(cells), m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"]))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("baselines")
    e = sub.add_parser("ensemble")
    e.add_argument("dirs", nargs="+")
    e.add_argument("--tfidf", type=float, default=0.0)
    e.add_argument("--spec", default="2+3")
    t = sub.add_parser("bias-transfer")
    t.add_argument("a")
    t.add_argument("b")
    m = sub.add_parser("mix-bias")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--spec", default="3")
    m.add_argument("--weights", default="0.4,0.5,0.6")
    sv = sub.add_parser("served")
    sv.add_argument("dirs", nargs="+")
    sv.add_argument("--weight", type=float, required=True)
    sv.add_argument("--temperature", type=float, default=1.0)
    sv.add_argument("--vs", nargs="+", default=None, help="fold runs to compare with, fold for fold")
    sv.add_argument("--spec", default="3")
    se = sub.add_parser("served-ensemble")
    se.add_argument("folds", nargs="+", help="per fold: the members' fold-run directories, comma-joined")
    se.add_argument("--spec", default="3")
    se.add_argument("--weights", default="0.0,0.4,0.5,0.6")
    args = ap.parse_args()
    if args.cmd == "served":
        served(args.dirs, args.spec, args.weight, args.temperature, args.vs)
    elif args.cmd == "served-ensemble":
        served_ensemble(args.folds, args.spec, [float(w) for w in args.weights.split(",")])
    elif args.cmd == "mix-bias":
        mix_bias(args.dirs, args.spec, [float(w) for w in args.weights.split(",")])
    elif args.cmd == "baselines":
        baselines()
    elif args.cmd == "ensemble":
        ensemble(args.dirs, args.tfidf, args.spec)
    else:
        bias_transfer(args.a, args.b)


if __name__ == "__main__":
    main()
