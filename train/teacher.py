"""The distillation teacher: a bag-of-n-grams logistic regression (TF-IDF of character n-grams within
words, 2-5, and of word uni/bigrams; lower-cased).

Why this teacher: on validation fold 0 it (class-balanced) scores as well as the Gemma 3 models of
the recipe (macro-F1 0.77), yet it errs on other comments: the average of its log-probabilities and a
Gemma model's scores 0.802 (train/runs.md, train/fold_analysis.py). Distilling it did not carry that gain into one Gemma model
(kd_alpha 0.5: 0.758, within a seed's spread), so distillation is off by default. Spelling varies a lot in Hinglish, and character n-grams see
variants a 4,096-token BPE splits differently. The student (the bundled Gemma model) learns from the
teacher's probabilities on the training comments; the teacher never runs in gemmaclf.

The teacher's probabilities for a training comment must not come from a teacher that saw that
comment's label (they would be nearly one-hot, and carry nothing the label does not), so they are
cross-fitted: each comment's probabilities come from a teacher trained on the other k-1 parts.
"""
import hashlib

import numpy as np

from common import LABELS

C = 10.0  # inverse L2 strength: of C = 1, 3, 10, 30 the lowest log-loss on fold 0 (0.230; train/runs.md)


def _features(kinds):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion
    make = {"chars": lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                             lowercase=True, dtype=np.float32),
            "words": lambda: TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                             lowercase=True, dtype=np.float32)}
    return FeatureUnion([(k, make[k]()) for k in kinds])


def fit(rows, c=C, balanced=False, kinds=("chars", "words")):
    """A fitted teacher (features + logistic regression) on rows with "text" and "label".
    balanced / kinds: the variants train/fold_analysis.py compares (the teacher is the default)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    model = make_pipeline(_features(kinds), LogisticRegression(C=c, max_iter=3000,
                                                               class_weight="balanced" if balanced else None))
    model.fit([r["text"] for r in rows], [LABELS.index(r["label"]) for r in rows])
    return model


def predict(model, texts):
    """[N, 3] probabilities in LABELS order."""
    return model.predict_proba(list(texts)).astype(np.float64)


def cross_fitted(rows, k=5):
    """Each row's teacher probabilities from a teacher trained on the other parts (parts dealt by a
    SHA-1 of the normalized text, so the result depends on the data only)."""
    part = [int(hashlib.sha1(("teacher:" + r["key"]).encode("utf-8")).hexdigest(), 16) % k for r in rows]
    out = np.zeros((len(rows), len(LABELS)))
    for p in range(k):
        tr = [r for r, q in zip(rows, part) if q != p]
        idx = [i for i, q in enumerate(part) if q == p]
        if not idx:
            continue
        out[idx] = predict(fit(tr), [rows[i]["text"] for i in idx])
    return out
