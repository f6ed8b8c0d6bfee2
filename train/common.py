"""Shared constants and data helpers for the gemmaclf training recipe."""
import collections
import json
import os
import re
import unicodedata

LABELS = ["Not Hate", "Hate", "Extreme Hate"]
PROMPT_PREFIX = "classify the following comment into Hate, Extreme Hate or Not Hate: "
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("GC_SHARED", os.path.join(REPO, "..", "shared"))
DATA = os.path.join(SHARED, "data", "indo-hatespeech")
REF_TOKCFG = os.path.join(SHARED, "reference", "hf-trained-classifier", "tokenizer_config.json")


def norm_text(s):
    """Normalisation used for deduplication (the data set's own split key)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", s).lower()).strip()


def squeeze_comment(s):
    """The comment as a model with "comment_norm" sees it (gemmaclf.json; the engine applies the same
    in src/core/classifier/comment_norm.c): bytes A-Z lower-cased (only those, as the n-gram head
    does), and every run of one code point longer than 2 cut to 2 ("cholaaa" -> "cholaa",
    six thumbs down -> two): fewer spellings of one word for a 4,096-token vocabulary to cover."""
    s = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)
    return re.sub(r"(.)\1\1+", r"\1\1", s, flags=re.S)


def comment_rewrite(norm):
    """text -> text: the rewrite that gemmaclf.json's "comment_norm" names (None: the text as it is)."""
    rewrites = {None: lambda t: t, "squeeze": squeeze_comment}
    if norm not in rewrites:
        raise ValueError("unknown comment_norm %r" % (norm,))
    return rewrites[norm]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_split(name):
    return read_jsonl(os.path.join(DATA, name + ".jsonl"))


def distinct(rows):
    """Group rows by normalized text; keep the first text and the majority label
    (ties broken towards the more severe label, which is the rarer one)."""
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(norm_text(r["text"]), []).append(r)
    out = []
    for key, rs in groups.items():
        c = collections.Counter(r["label"] for r in rs)
        best = max(c.items(), key=lambda kv: (kv[1], LABELS.index(kv[0])))[0]
        out.append({"text": rs[0]["text"], "label": best, "count": len(rs), "key": key})
    return out


def prompt_text(comment):
    """The prompt exactly as the Gemma 3 chat template renders one user message
    with add_generation_prompt=True (the template trims the content)."""
    return ("<bos><start_of_turn>user\n" + (PROMPT_PREFIX + comment.strip()).strip() +
            "<end_of_turn>\n<start_of_turn>model\n")


def answer_text(label):
    return label + "<end_of_turn>\n"


def fix_special_ids(model_dir):
    """config.json: eos = <eos> (1), as Gemma 3 configs have it; generation_config.json: stop at
    <eos> or <end_of_turn> (1, 5), as Gemma 3's [1, 106] does, so greedy generation ends after the
    label. (TRL may have aligned config.eos_token_id to the tokenizer's <end_of_turn>.)"""
    for name, eos in (("config.json", 1), ("generation_config.json", [1, 5])):
        path = os.path.join(model_dir, name)
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg.update(bos_token_id=2, pad_token_id=0, eos_token_id=eos)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")


def cv_fold_of(distinct_rows, k):
    """Fold number (0..k-1) of each distinct training comment: grouped by normalized text (the rows
    are distinct already, so every duplicate of a comment is in the same fold) and stratified by
    label: within each label the comments are ordered by a hash of their normalized text and dealt
    out in turn. Fixed by the data alone (no seed), so every run sees the same folds."""
    import hashlib
    fold = [0] * len(distinct_rows)
    for lab in LABELS:
        idx = [i for i, r in enumerate(distinct_rows) if r["label"] == lab]
        idx.sort(key=lambda i: hashlib.sha1(distinct_rows[i]["key"].encode("utf-8")).hexdigest())
        for rank, i in enumerate(idx):
            fold[i] = rank % k
    return fold


def fold_split(fold, k=5):
    """(training rows, validation rows) of validation fold `fold` of the distinct training comments
    (cv_fold_of, k folds): what the full recipe's fold runs train on and score."""
    rows = distinct(load_split("train"))
    f = cv_fold_of(rows, k)
    return [r for r, g in zip(rows, f) if g != fold], [r for r, g in zip(rows, f) if g == fold]
