#!/usr/bin/env python3
"""`gemmaclf logits` on the real trained classifier checkpoint (../shared/reference/
hf-trained-classifier) against transformers' recorded outputs: for the first N distinct dev
comments, the logits of the three labels' first tokens at the prompt's last position (1e-4 of
the largest) and the argmax there == the first token of the text transformers generated.
Prompts are built with the checkpoint's own chat template (transformers' tokenizer).

Run from the repository root: python test/python/test_trained_classifier.py
(GC_BIN: the CLI, default bin/gemmaclf; GC_SHARED: the shared folder, default ../shared.)"""
import json
import os
import subprocess
import sys

try:
    from transformers import AutoTokenizer
except Exception as exc:  # noqa: BLE001 - without the reference nothing is checked: a failure
    print(f"FAIL: transformers not importable ({exc.__class__.__name__}: {exc})")
    print("test_trained_classifier: 0 passed, 1 failed")
    sys.exit(1)

N = int(os.environ.get("GC_CLASSIFIER_N", "40"))
TOL = 1e-4
LABELS = ["Not Hate", "Hate", "Extreme Hate"]


def main():
    shared = os.environ.get("GC_SHARED", "../shared")
    d = os.path.join(shared, "reference", "hf-trained-classifier")
    if not os.path.exists(os.path.join(d, "hf_predictions_dev.json")):
        print(f"FAIL: {d} not found (set GC_SHARED)")
        print("test_trained_classifier: 0 passed, 1 failed")
        return 1
    gc_bin = os.environ.get("GC_BIN", "bin/gemmaclf")
    tok = AutoTokenizer.from_pretrained(d)
    preds = json.load(open(os.path.join(d, "hf_predictions_dev.json")))["predictions"][:N]
    first = [tok.encode(label, add_special_tokens=False)[0] for label in LABELS]
    lines = []
    for p in preds:
        msg = [{"role": "user", "content": "classify the following comment into Hate, Extreme Hate "
                                           "or Not Hate: " + p["text"].strip()}]
        ids = tok.apply_chat_template(msg, add_generation_prompt=True, tokenize=True)
        if not isinstance(ids, list):
            ids = ids["input_ids"]
        lines.append(json.dumps(list(ids)))
    out = subprocess.run([gc_bin, "logits", d, "--threads", "2", "--batch", "8"],
                         input="\n".join(lines) + "\n", capture_output=True, text=True, check=False)
    passed = failed = 0
    if out.returncode != 0:
        print(f"FAIL gemmaclf logits exited {out.returncode}: {out.stderr.strip()}")
        failed += 1
    worst = 0.0
    for p, line in zip(preds, out.stdout.splitlines()):
        last = json.loads(line)[-1]
        got = [last[i] for i in first]
        ref = p["label_first_token_logits"]
        err = max(abs(a - b) for a, b in zip(got, ref)) / max(abs(x) for x in ref)
        worst = max(worst, err)
        gen_first = tok.encode(p["generated"], add_special_tokens=False)[0]
        argmax = max(range(len(last)), key=last.__getitem__)
        ok = err <= TOL and argmax == gen_first
        if not ok:
            print(f"FAIL {p['text'][:40]!r}: label logits {got} vs {ref} (rel {err:.3g}), "
                  f"argmax {argmax} vs {gen_first}")
        passed += ok
        failed += not ok
    if out.returncode == 0 and len(out.stdout.splitlines()) != len(preds):
        print("FAIL: wrong number of output lines")
        failed += 1
    print(f"worst relative error of the label logits: {worst:.3g}")
    print(f"test_trained_classifier: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
