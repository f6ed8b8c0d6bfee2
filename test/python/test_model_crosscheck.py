#!/usr/bin/env python3
"""Cross-check of the bundled model between transformers and the C engine.

1. The exported checkpoint loads in transformers (Gemma3ForCausalLM, F32) and its gemmaclf.json is
   well formed; the Python scoring rule on distinct dev comments meets the model card's acceptance
   bar (macro-F1 >= 0.82, Extreme Hate F1 >= 0.70).
2. `GC_BIN logits MODEL_DIR`: transformers' last-position logits on 50 dev prompts match the C
   engine's within 1e-4 relative to max |logit|.  Protocol assumed: stdin JSON lines, each a JSON
   array of token ids (or, if the command rejects that, {"ids": [...]}); stdout one JSON line per
   input: the last position's logits as an array of vocab floats, an array of per-position arrays,
   or an object with "logits".
3. `GC_BIN classify MODEL_DIR`: JSON lines of JSON strings in, {"label", "scores"} out; labels
   equal the Python scoring rule's for >= 99.9% of dev rows; scores equal softmax((score + bias) / T)
   (bias and temperature T from gemmaclf.json), where score is, with an n-gram head (gemmaclf.json
   "ngram_weight" w > 0), (1 - w) log_softmax(model scores) + w head log-probabilities computed by
   train/ngram_head.py. The texts are the dev rows plus edge cases of the head's byte features
   (case, every ASCII blank, non-ASCII, a text past the input cap).
4. With an n-gram head: the head alone (a copy of the directory with ngram_weight 1, T 1, no bias)
   gives train/ngram_head.py's probabilities within 1e-5 on the same texts and the empty ones.
A missing package, data set, CLI or CLI command is a failure: nothing would be compared.

Env: GC_BIN (default bin/gemmaclf), GC_MODEL_DIR (default models/gemmaclf-hinglish-small),
GC_SHARED (default ../shared).  Final line "test_model_crosscheck: N passed, M failed"."""
import json
import os
import subprocess
import sys

from tally import Tally

NAME = "test_model_crosscheck"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALLY = Tally(NAME)
check = TALLY.check


def bin_commands(gc_bin):
    """Subcommands the CLI lists in its help (empty if the binary is missing)."""
    if not os.access(gc_bin, os.X_OK):
        return set()
    r = subprocess.run([gc_bin, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cmds = set()
    for line in r.stdout.splitlines():
        if line.startswith("  ") and not line.startswith("      ") and line.strip():
            cmds.add(line.split()[0])
    return cmds


def run_bin(args, lines, timeout=600):
    r = subprocess.run(args, input="".join(l + "\n" for l in lines), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    return r.returncode, [l for l in r.stdout.splitlines() if l.strip()], r.stderr


def main():
    try:
        import numpy as np
        import torch
        from transformers import Gemma3ForCausalLM
    except ImportError as e:
        check(False, "python package missing: %s" % e)
        return
    torch.set_num_threads(int(os.environ.get("GC_TEST_THREADS", "1")))
    shared = os.environ.get("GC_SHARED", os.path.join(ROOT, "..", "shared"))
    mdir = os.environ.get("GC_MODEL_DIR", os.path.join(ROOT, "models", "gemmaclf-hinglish-small"))
    gc_bin = os.environ.get("GC_BIN", os.path.join(ROOT, "bin", "gemmaclf"))
    if not check(os.path.isfile(os.path.join(shared, "data", "indo-hatespeech", "dev.jsonl")),
                 "data set not found under %s (set GC_SHARED)" % shared):
        return
    sys.path.insert(0, os.path.join(ROOT, "train"))
    os.environ["GC_SHARED"] = shared
    from common import LABELS, PROMPT_PREFIX, distinct, load_split
    from evaluate import metrics
    from scoring import PromptEncoder, label_logprobs, load_bias, load_temperature

    # 1. transformers side
    if not check(os.path.isfile(os.path.join(mdir, "model.safetensors")), "model at %s" % mdir):
        return
    model = Gemma3ForCausalLM.from_pretrained(mdir, dtype=torch.float32)
    model.eval()
    check(all(p.dtype == torch.float32 for p in model.parameters()), "F32 weights")
    size = sum(os.path.getsize(os.path.join(mdir, f)) for f in os.listdir(mdir))
    check(size <= 40 * 1024 * 1024, "model folder <= 40 MB (%d bytes)" % size)
    gc = json.load(open(os.path.join(mdir, "gemmaclf.json"), encoding="utf-8"))
    check(gc.get("labels") == LABELS and gc.get("prompt_prefix") == PROMPT_PREFIX and
          set(gc.get("score_bias", {})) <= set(LABELS), "gemmaclf.json: %r" % gc)
    enc = PromptEncoder(os.path.join(mdir, "tokenizer.json"))
    check(enc.distinct_first, "labels' first tokens distinct: %r" % enc.first_ids)
    bias = np.array(load_bias(mdir))
    max_tok = 512  # gemmaclf's default max_input_tokens
    dev = load_split("dev")
    dd = distinct(dev)
    s_dd = served(model, enc, mdir, [r["text"] for r in dd], max_tok)
    m = metrics([LABELS.index(r["label"]) for r in dd], np.argmax(s_dd + bias, 1).tolist())
    print("distinct dev: macro-F1 %.4f, Extreme Hate F1 %.4f" % (m["macro"]["f1"],
                                                                 m["per_class"]["Extreme Hate"]["f1"]))
    check(m["macro"]["f1"] >= 0.82, "distinct dev macro-F1 %.4f >= 0.82" % m["macro"]["f1"])
    check(m["per_class"]["Extreme Hate"]["f1"] >= 0.70,
          "distinct dev Extreme Hate F1 %.4f >= 0.70" % m["per_class"]["Extreme Hate"]["f1"])

    cmds = bin_commands(gc_bin)
    # 2. logits
    if check("logits" in cmds, "%s missing or has no 'logits' command: logits cross-check not run" % gc_bin):
        check_logits(gc_bin, mdir, model, enc, dev[:50], max_tok)
    # 3. classify
    if check("classify" in cmds, "%s missing or has no 'classify' command: label cross-check not run" % gc_bin):
        check_classify(gc_bin, mdir, model, enc, dev + [{"text": t} for t in EDGE_TEXTS], bias,
                       load_temperature(mdir), max_tok, LABELS)
        check_head_alone(gc_bin, mdir, [r["text"] for r in dev] + EDGE_TEXTS, max_tok, LABELS)


def check_head_alone(gc_bin, mdir, texts, max_tok, labels):
    import tempfile
    import numpy as np
    import ngram_head
    head, w = ngram_head.model_head(mdir)
    if head is None:
        print("no n-gram head in %s: head check not run" % mdir)
        return
    with tempfile.TemporaryDirectory() as d:
        for f in os.listdir(mdir):
            if f != "gemmaclf.json":
                os.symlink(os.path.join(os.path.abspath(mdir), f), os.path.join(d, f))
        cfg = json.load(open(os.path.join(mdir, "gemmaclf.json"), encoding="utf-8"))
        cfg.update(ngram_weight=1.0, temperature=1.0, score_bias={})
        json.dump(cfg, open(os.path.join(d, "gemmaclf.json"), "w", encoding="utf-8"))
        rc, out, err = run_bin([gc_bin, "classify", d, "--max-input-tokens", str(max_tok)],
                               [json.dumps(t) for t in texts])
    if not check(rc == 0 and len(out) == len(texts),
                 "head alone: exit %d, %d lines for %d texts; stderr: %s" % (rc, len(out), len(texts), err[-500:])):
        return
    want = np.exp(ngram_head.log_probs(head, as_seen(mdir, texts), cap=ngram_head.text_cap(max_tok)))
    got = np.array([[json.loads(l)["scores"][lab] for lab in labels] for l in out])
    dp = float(np.abs(got - want).max())
    print("head alone: max |probability difference| %.2e over %d texts" % (dp, len(texts)))
    check(dp <= 1e-5, "n-gram head probabilities equal train/ngram_head.py's within 1e-5 (%.2e)" % dp)


# Byte-feature edge cases of the n-gram head: upper case (only A-Z is folded), each ASCII blank
# that splits words, non-ASCII bytes (word bytes), underscores and digits, 1-byte runs (not
# words), a text past the 32,768-byte input cap (max_input_tokens 512), and empty and blank texts
# (the template's trim drops the prefix's trailing space: no token between prompt head and tail).
EDGE_TEXTS = ["MAAR DALO ISKO", "Tu\tbahut\nganda\rhai\x0bnikal\x0cyahan se", "तुम बहुत बुरे हो 😡😡",
              "ÄÖÜ Ça va", "a b c d e", "_x_ 42 4 2 __", "x" * 40000,
              "kutta " * 6000 + "PAGAL", "", "   \n"]


def as_seen(mdir, texts):
    """The comments as the model reads them: rewritten when gemmaclf.json names a "comment_norm"
    (the texts here are short of the engine's byte cap, or unchanged by the rewrite, so rewriting
    the whole text equals the engine's rewrite of its capped bytes)."""
    from common import comment_rewrite
    seen = comment_rewrite(json.load(open(os.path.join(mdir, "gemmaclf.json"), encoding="utf-8")).get("comment_norm"))
    return [seen(t) for t in texts]


def served(model, enc, mdir, texts, max_tok):
    """The label scores gemmaclf serves (before bias and temperature)."""
    from scoring import label_logprobs
    import ngram_head
    texts = as_seen(mdir, texts)
    s = label_logprobs(model, enc, texts, max_tokens=max_tok).numpy()
    head, w = ngram_head.model_head(mdir)
    if head is None:
        return s
    return ngram_head.combine(s, ngram_head.log_probs(head, texts, cap=ngram_head.text_cap(max_tok)), w)


def check_logits(gc_bin, mdir, model, enc, rows, max_tok):
    import numpy as np
    import torch
    prompts = [enc.prompt_ids(t, max_tok) for t in as_seen(mdir, [r["text"] for r in rows])]
    rc, out, err = run_bin([gc_bin, "logits", mdir], [json.dumps(p) for p in prompts])
    if rc != 0 or len(out) != len(prompts):
        rc, out, err = run_bin([gc_bin, "logits", mdir], [json.dumps({"ids": p}) for p in prompts])
    if not check(rc == 0 and len(out) == len(prompts),
                 "logits: exit %d, %d lines for %d prompts; stderr: %s" % (rc, len(out), len(prompts), err[-500:])):
        return
    worst = 0.0
    for p, line in zip(prompts, out):
        got = json.loads(line)
        if isinstance(got, dict):
            got = got.get("logits")
        got = np.asarray(got, dtype=np.float64)
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([p])).logits[0].double().numpy()
        if got.ndim == 1:
            ref = ref[-1]
        if got.shape != ref.shape:
            check(False, "logits shape %r vs transformers %r" % (got.shape, ref.shape))
            return
        worst = max(worst, float(np.abs(got - ref).max() / np.abs(ref).max()))
    print("logits: max |C - transformers| / max|logit| = %.2e over %d prompts" % (worst, len(prompts)))
    check(worst <= 1e-4, "logits agree within 1e-4 relative (%.2e)" % worst)


def check_classify(gc_bin, mdir, model, enc, rows, bias, temperature, max_tok, labels):
    import numpy as np
    s = served(model, enc, mdir, [r["text"] for r in rows], max_tok) + bias
    want = [labels[i] for i in np.argmax(s, 1)]
    prob = np.exp((s - s.max(1, keepdims=True)) / temperature)
    prob /= prob.sum(1, keepdims=True)
    rc, out, err = run_bin([gc_bin, "classify", mdir, "--max-input-tokens", str(max_tok)],
                           [json.dumps(r["text"]) for r in rows])
    if not check(rc == 0 and len(out) == len(rows),
                 "classify: exit %d, %d lines for %d texts; stderr: %s" % (rc, len(out), len(rows), err[-500:])):
        return
    got = [json.loads(l) for l in out]
    same = sum(g.get("label") == w for g, w in zip(got, want))
    print("classify: %d/%d labels equal the Python scoring rule" % (same, len(rows)))
    check(same >= 0.999 * len(rows), "labels agree on >= 99.9%% of dev (%d/%d)" % (same, len(rows)))
    dp = max(abs(g["scores"][lab] - prob[i, j]) for i, g in enumerate(got) for j, lab in enumerate(labels)
             if "scores" in g and lab in g["scores"])
    print("classify: max |probability difference| %.2e" % dp)
    check(dp <= 1e-3, "scores == softmax((score + bias) / T) within 1e-3, T = %g (%.2e)" % (temperature, dp))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    TALLY.finish()
