"""The n-gram head: a hashed bag-of-n-grams logistic regression served next to the Gemma model.

Why: on validation folds a TF-IDF model of character n-grams errs on other comments than the Gemma
models of the recipe (train/runs.md), and the mean of the two models' label log-probabilities scores
0.04 macro-F1 above either alone, more than any change to the Gemma recipe moved one model. Distilling
it into the Gemma model did not carry the gain (kd_alpha), so gemmaclf serves both: the head costs
microseconds per comment next to the forward pass.

The features are defined on the comment's UTF-8 bytes so that src/core/classifier/ngram_head.c
computes exactly the same ones (test/python/test_model_crosscheck.py compares the two):
  1. bytes A-Z are lower-cased (only those: no locale, no Unicode case folding);
  2. "chars": the text is split at ASCII whitespace; each word, with one space before and after it,
     gives its byte n-grams, n = 2..5 (sklearn's char_wb, over bytes);
  3. "words": maximal runs of bytes in [0-9a-z_] or >= 0x80 that are >= 2 bytes long, and each pair
     of neighbouring runs joined by one space (sklearn's word 1-2-grams, over bytes);
  4. each n-gram goes to bucket FNV-1a-64("c" or "w" + its bytes) mod B (B = 2^bits);
  5. per part: value = (1 + ln count) * idf[bucket], the part's vector scaled to unit L2 norm
     (sklearn's sublinear TF-IDF, one vectorizer per part);
  6. label log-probabilities = log_softmax(weight @ [chars; words] + bias).
idf = ln((1 + n) / (1 + df)) + 1 over the training comments (sklearn's smooth idf), and 0 for buckets
seen in fewer than 2 of them (min_df = 2). Texts are cut to gemmaclf's input cap before featurising.

File (ngram_head.safetensors in the model directory; gemmaclf.json's "ngram_weight" turns it on):
idf_chars [B], idf_words [B], weight [labels, 2B] (chars buckets, then words), bias [labels], all F32;
metadata "format" = "gemmaclf-ngram-1" and "labels" = the labels joined by newlines, in
gemmaclf.json's order.

The recipe (train/recipe.py) fits, chooses and exports the head; the commands here are the analyses
behind train/runs.md:
    train/ngram_head.py calibrate FOLD_DIR [FOLD_DIR ...] --spec S   # macro-F1 per weight on fold runs, then T
    train/ngram_head.py variants FOLD_DIR [FOLD_DIR ...] --spec S    # other heads and mixing rules on fold runs
    train/ngram_head.py dev-report MODEL_DIR [--head-from DIR]       # dev, scored once: with and without the head
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import LABELS, comment_rewrite, distinct, fold_split, load_split  # noqa: E402

FORMAT = "gemmaclf-ngram-1"
BITS = 17      # 2^17 buckets per part: fold 0 scored as with 2^18 (train/runs.md), half the memory
C = 10.0       # inverse L2 strength of the logistic regression (the reference model's)
MIN_DF = 2
FNV_OFFSET, FNV_PRIME, MASK64 = 0xcbf29ce484222325, 0x100000001b3, (1 << 64) - 1
WORD_BYTES = frozenset(list(range(48, 58)) + list(range(97, 123)) + [95] + list(range(128, 256)))
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # ngram_weight candidates


def text_cap(max_input_tokens=512):
    """gemmaclf cuts texts to this many bytes before tokenizing (classifier.h); the head too."""
    return max(4096, 64 * max_input_tokens)


def fnv1a(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def ngrams(text, cap=None):
    """(chars, words): lists of the text's n-grams as bytes, with their kind prefix."""
    t = text.encode("utf-8", "surrogatepass")[:cap or text_cap()]
    t = bytes(b + 32 if 65 <= b <= 90 else b for b in t)
    chars = []
    for w in t.split():
        p = b" " + w + b" "
        chars += [b"c" + p[i:i + n] for n in range(2, 6) for i in range(len(p) - n + 1)]
    runs, cur = [], bytearray()
    for b in t + b" ":
        if b in WORD_BYTES:
            cur.append(b)
        else:
            if len(cur) >= 2:
                runs.append(bytes(cur))
            cur = bytearray()
    words = [b"w" + r for r in runs] + [b"w" + a + b" " + b for a, b in zip(runs, runs[1:])]
    return chars, words


def counts(texts, bits=BITS, cap=None):
    """Two scipy CSR matrices [len(texts), 2^bits] of n-gram counts (chars, words)."""
    from scipy import sparse
    mask = (1 << bits) - 1
    out = []
    feats = [ngrams(t, cap) for t in texts]
    for part in (0, 1):
        rows, cols, vals = [], [], []
        for i, f in enumerate(feats):
            c = {}
            for g in f[part]:
                k = fnv1a(g) & mask
                c[k] = c.get(k, 0) + 1
            rows += [i] * len(c)
            cols += list(c)
            vals += list(c.values())
        out.append(sparse.csr_matrix((np.asarray(vals, np.float64), (rows, cols)), shape=(len(texts), 1 << bits)))
    return out


def features(cnts, idfs):
    """TF-IDF rows as the engine computes them (float64 from F32 idf), parts L2-normalised, joined."""
    from scipy import sparse
    parts = []
    for x, idf in zip(cnts, idfs):
        x = x.copy()
        x.data = 1.0 + np.log(x.data)
        x = x @ sparse.diags(np.asarray(idf, np.float64))
        nrm = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        nrm[nrm == 0] = 1.0
        parts.append(sparse.diags(1.0 / nrm) @ x)
    return sparse.hstack(parts).tocsr()


def idf_of(cnts, n):
    """Per part: sklearn's smooth idf over n comments, 0 for buckets seen in fewer than MIN_DF (F32)."""
    out = []
    for x in cnts:
        df = np.bincount(x.indices, minlength=x.shape[1])
        out.append(np.where(df >= MIN_DF, np.log((1.0 + n) / (1.0 + df)) + 1.0, 0.0).astype(np.float32))
    return out


def fit(rows, bits=BITS, c=C):
    """A head {idf_chars, idf_words, weight, bias} (F32) on rows with "text" and "label"."""
    from sklearn.linear_model import LogisticRegression
    cnts = counts([r["text"] for r in rows], bits)
    idfs = idf_of(cnts, len(rows))
    lr = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    lr.fit(features(cnts, idfs), [LABELS.index(r["label"]) for r in rows])
    return {"idf_chars": idfs[0], "idf_words": idfs[1], "weight": lr.coef_.astype(np.float32),
            "bias": lr.intercept_.astype(np.float32)}


def log_probs(head, texts, cap=None):
    """[N, labels] label log-probabilities, the engine's arithmetic (float64 over the F32 tensors)."""
    bits = int(round(math.log2(head["idf_chars"].shape[0])))
    cnts = counts(texts, bits, cap)
    x = features(cnts, (head["idf_chars"], head["idf_words"]))
    z = x @ head["weight"].astype(np.float64).T + head["bias"].astype(np.float64)
    z -= z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def save(head, path, labels=LABELS):
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in head.items()}, path,
              metadata={"format": FORMAT, "labels": "\n".join(labels)})


def load(path):
    from safetensors.numpy import load_file
    return load_file(path)


def model_head(model_dir):
    """(head, weight) of a model directory, or (None, 0.0) when gemmaclf.json turns none on."""
    p = os.path.join(model_dir, "gemmaclf.json")
    w = float(json.load(open(p, encoding="utf-8")).get("ngram_weight", 0.0)) if os.path.exists(p) else 0.0
    return (load(os.path.join(model_dir, "ngram_head.safetensors")), w) if w > 0 else (None, 0.0)


def combine(gemma_scores, head_lp, weight):
    """What gemmaclf scores with a head: (1 - w) log_softmax(Gemma label scores) + w head log-probs."""
    s = np.asarray(gemma_scores, np.float64)
    s = s - s.max(1, keepdims=True)
    s = s - np.log(np.exp(s).sum(1, keepdims=True))
    return (1.0 - weight) * s + weight * head_lp


def choose_weight(scores, head_lp, y):
    """(w, {w: macro-F1}): the weight in WEIGHTS with the best macro-F1 at bias 0 of the mixed scores
    (the recipe's rule), and the macro-F1 of every weight, 0 (the Gemma model alone) included."""
    import evaluate as ev
    by = {w: ev.metrics(y, combine(scores, head_lp, w).argmax(1).tolist())["macro"]["f1"] for w in (0.0,) + WEIGHTS}
    return max(WEIGHTS, key=by.get), by


def fold_mix_inputs(fold_dirs, spec):
    """What the served mix is made of on each fold run, as a list of (dir, fold, Gemma label scores
    of candidate spec, head log-probabilities, labels): the head is refitted on the fold's training
    comments, so that it has never seen the comments it scores (once per fold: runs of the same fold
    share it)."""
    out, heads = [], {}
    for d in fold_dirs:
        cv = json.load(open(os.path.join(d, "cv.json")))
        npz = np.load(os.path.join(d, "val_scores.npz"))
        tr, va = fold_split(cv["fold"], cv["n_folds"])
        y = [LABELS.index(r["label"]) for r in va]
        assert npz["y"].tolist() == y, "%s: not this fold's comments" % d
        norm = int(cv.get("config", {}).get("comment_norm", 0))  # the comments as that run saw them
        key = (cv["fold"], cv["n_folds"], norm)
        if key not in heads:
            seen = comment_rewrite("squeeze" if norm else None)
            heads[key] = log_probs(fit([dict(r, text=seen(r["text"])) for r in tr]),
                                   [seen(r["text"]) for r in va])
        out.append((d, cv["fold"], npz["scores_" + spec], heads[key], y))
    return out


def calibrate(fold_dirs, spec):
    """The recipe's choice of the head weight (pooled over the fold runs given), then T (NLL) at it,
    with the head refitted on each fold's training comments; prints the macro-F1 per weight per fold."""
    import calibrate as cal
    import evaluate as ev
    scores, lps, ys = [], [], []
    for d, fold, s, lp, y in fold_mix_inputs(fold_dirs, spec):
        print("%s (fold %d, candidate %s): head alone %.4f" % (
            d, fold, spec, ev.metrics(y, lp.argmax(1).tolist())["macro"]["f1"]))
        for w in (0.0,) + WEIGHTS:
            m = ev.metrics(y, combine(s, lp, w).argmax(1).tolist())
            print("  weight %.1f: macro-F1 %.4f, Extreme Hate F1 %.4f" % (w, m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"]))
        scores.append(s)
        lps.append(lp)
        ys += y
    sc, lp = np.concatenate(scores), np.concatenate(lps)
    best, by = choose_weight(sc, lp, ys)
    s = combine(sc, lp, best)
    zero = [0.0] * len(LABELS)
    t = cal.fit_temperature(s, ys, zero)
    print("chosen: ngram_weight %.1f (pooled macro-F1 %.4f), T %.4f, ECE %.4f -> %.4f" % (
        best, by[best], t, cal.ece(cal.probs(s, zero), ys)[0], cal.ece(cal.probs(s, zero, t), ys)[0]))
    return best, t


def variants(fold_dirs, spec):
    """Other heads and mixing rules than the recipe's, on fold runs (train/runs.md, "Head and mixing
    variants"): macro-F1 / Extreme Hate F1 per fold and pooled, over the recipe's weights. Heads:
    the logistic regression at C = 3, 10 (the recipe), 30, without class weights, and NB-LR (one
    binary regression per label on features scaled by its naive-Bayes log-count ratio). Rules: the
    recipe's log-linear mix, one weight per label (all 5^3 on a grid, the best pooled), and a mix of
    probabilities."""
    import itertools
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    import evaluate as ev

    def f1(y, s):
        m = ev.metrics(list(y), np.asarray(s).argmax(1).tolist())
        return m["macro"]["f1"], m["per_class"]["Extreme Hate"]["f1"]

    def lsm(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    def nb_lr(x, xv, y, c):
        xb = x.copy()
        xb.data[:] = 1
        z = np.zeros((xv.shape[0], len(LABELS)))
        for k in range(len(LABELS)):
            p = 1 + np.asarray(xb[y == k].sum(0)).ravel()
            q = 1 + np.asarray(xb[y != k].sum(0)).ravel()
            d = sparse.diags(np.log((p / p.sum()) / (q / q.sum())))
            m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x @ d, (y == k).astype(int))
            z[:, k] = (xv @ d) @ m.coef_[0] + m.intercept_[0]
        return z

    heads = {"C=10 (recipe)": lambda x, xv, y: LogisticRegression(C=10, max_iter=3000, class_weight="balanced").fit(x, y).decision_function(xv),
             "C=3": lambda x, xv, y: LogisticRegression(C=3, max_iter=3000, class_weight="balanced").fit(x, y).decision_function(xv),
             "C=30": lambda x, xv, y: LogisticRegression(C=30, max_iter=3000, class_weight="balanced").fit(x, y).decision_function(xv),
             "C=10, no class weights": lambda x, xv, y: LogisticRegression(C=10, max_iter=3000).fit(x, y).decision_function(xv),
             "NB-LR, C=4": lambda x, xv, y: nb_lr(x, xv, y, 4.0)}
    g, lp, ys = [], {k: [] for k in heads}, []
    for d in fold_dirs:
        cv = json.load(open(os.path.join(d, "cv.json")))
        tr, va = fold_split(cv["fold"], cv["n_folds"])
        ctr, cva = counts([r["text"] for r in tr]), counts([r["text"] for r in va])
        idfs = idf_of(ctr, len(tr))
        x, xv = features(ctr, idfs), features(cva, idfs)
        y = np.array([LABELS.index(r["label"]) for r in tr])
        ys.append(np.array([LABELS.index(r["label"]) for r in va]))
        g.append(np.load(os.path.join(d, "val_scores.npz"))["scores_" + spec])
        for k, fn in heads.items():
            lp[k].append(lsm(fn(x, xv, y)))
    pooled = lambda parts: np.concatenate(parts)  # noqa: E731
    yall = pooled(ys)
    show = lambda name, per: print("%-34s %s | pooled %.4f / %.4f" % (  # noqa: E731
        name, "  ".join("fold %d %.4f / %.4f" % ((i,) + f1(ys[i], s)) for i, s in enumerate(per)), *f1(yall, pooled(per))))
    for k in heads:
        show(k + ", alone", lp[k])
        for w in WEIGHTS:
            show("%s, w %.1f" % (k, w), [combine(a, b, w) for a, b in zip(g, lp[k])])
    base = [combine(a, b, 0.0) for a, b in zip(g, lp["C=10 (recipe)"])]
    per_label = lambda wv: [(1 - np.array(wv)) * a + np.array(wv) * b  # noqa: E731
                            for a, b in zip(base, lp["C=10 (recipe)"])]
    combos = list(itertools.product((0.4, 0.5, 0.6, 0.7, 0.8), repeat=len(LABELS)))
    best = max(combos, key=lambda wv: f1(yall, pooled(per_label(wv)))[0])
    show("weight per label %s, pooled choice" % (best,), per_label(best))
    for i in range(len(fold_dirs)):  # chosen on one fold, scored on the others: does it carry over?
        wv = max(combos, key=lambda wv: f1(ys[i], per_label(wv)[i])[0])
        show("weight per label %s, fold %d's choice" % (wv, i), per_label(wv))
    for w in (0.5, 0.6, 0.7):
        show("probabilities mixed, w %.1f" % w, [np.log((1 - w) * np.exp(a) + w * np.exp(b)) for a, b in zip(base, lp["C=10 (recipe)"])])


def dev_report(model_dir, head_dir=None):
    """Distinct dev comments, scored once: the Gemma model of model_dir with the head, weight and
    temperature of head_dir (default: model_dir), against the Gemma model alone (no bias, T = 1)."""
    import torch
    from transformers import Gemma3ForCausalLM
    import calibrate as cal
    import evaluate as ev
    from scoring import PromptEncoder, label_logprobs
    head_dir = head_dir or model_dir
    head, w = model_head(head_dir)
    t = float(json.load(open(os.path.join(head_dir, "gemmaclf.json"))).get("temperature", 1.0))
    torch.set_num_threads(2)
    model = Gemma3ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    enc = PromptEncoder(os.path.join(model_dir, "tokenizer.json"))
    dev = distinct(load_split("dev"))
    y = [LABELS.index(r["label"]) for r in dev]
    seen = comment_rewrite(json.load(open(os.path.join(model_dir, "gemmaclf.json"))).get("comment_norm"))
    texts = [seen(r["text"]) for r in dev]  # as the model reads them
    g = label_logprobs(model, enc, texts, max_tokens=512).numpy()
    zero = [0.0] * len(LABELS)
    for name, s, temp in (("Gemma alone, no bias", g, 1.0),
                          ("with the head (w %.2f), T %.4f" % (w, t), combine(g, log_probs(head, texts), w), t)):
        m = ev.metrics(y, s.argmax(1).tolist())
        p = cal.probs(s, zero, temp)
        print("%s: %s: accuracy %.4f, macro-F1 %.4f, F1 NH/H/EH %.4f / %.4f / %.4f, ECE %.4f" % (
            model_dir, name, m["accuracy"], m["macro"]["f1"], m["per_class"]["Not Hate"]["f1"],
            m["per_class"]["Hate"]["f1"], m["per_class"]["Extreme Hate"]["f1"], cal.ece(p, y)[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("fold_dirs", nargs="+")
    c.add_argument("--spec", required=True, help="the weight-averaging candidate the final model uses (e.g. 2+3)")
    v = sub.add_parser("variants")
    v.add_argument("fold_dirs", nargs="+")
    v.add_argument("--spec", required=True)
    r = sub.add_parser("dev-report")
    r.add_argument("model_dir")
    r.add_argument("--head-from", help="model directory whose head, weight and T to use")
    a = ap.parse_args()
    if a.cmd == "calibrate":
        calibrate(a.fold_dirs, a.spec)
    elif a.cmd == "variants":
        variants(a.fold_dirs, a.spec)
    else:
        dev_report(a.model_dir, a.head_from)


if __name__ == "__main__":
    main()
