#!/usr/bin/env python3
"""Helpers of scripts/gpu-check-prepare.sh and scripts/gpu-check.sh (numpy + stdlib only,
except `prompts`, which needs `tokenizers` and `safetensors`).

  prompts SHARED OUTDIR [--no-bench]
                               write the token-id inputs of the GPU check (run here); --no-bench:
                               not the 270m benchmark's prompts (scripts/cuda-emu-check.sh)
  cmp-logits NAME A B TOL      gemmaclf logits outputs (JSON lines, positions x vocab)
  cmp-rows NAME A B TOL [N]    bench_forward --out files (one line of label logits per prompt);
                               with N (a run with --limit): the first N lines of each
  cmp-classify NAME A B TOL    gemmaclf classify outputs ({"label", "scores"} per line)
  cmp-hf NAME ROWS PRED TOL    bench_forward rows vs hf_predictions_dev.json label logits
  summary RESULTS              print the table of a results file

Every cmp-* appends one JSON record to $DEVCHECK_RESULTS (when set) and exits 1 when a
required comparison fails (DEVCHECK_REQUIRED=0: report only): relative error =
max|a - b| / max(1, max|b|) per line (b is the reference, the second file) must be <= TOL and
labels (argmax per line) identical (DEVCHECK_LABELS=0: labels reported, not required).
Both files must hold the same number of lines (cmp-rows with N: at least N each), and at least
one: an empty or cut-short output is a failure. DEVCHECK_MIN_ERR=X also requires the relative
error to be > X (a reduced-precision mode compared with F32 must differ from it).
"""
import json
import os
import sys

import numpy as np


def record(rec):
    path = os.environ.get("DEVCHECK_RESULTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")
    ok = "ok" if rec.get("pass", True) else "FAIL"
    print(f"[{ok}] {rec['name']}: " + ", ".join(f"{k}={v}" for k, v in rec.items()
                                                if k not in ("name", "pass")))


def compare(name, a_rows, b_rows, tol, required=True):
    """a_rows, b_rows: lists of 2-D arrays (one per sequence: positions x values)."""
    if len(a_rows) != len(b_rows) or not a_rows:
        rec = {"name": name, "pass": False, "error": f"{len(a_rows)} vs {len(b_rows)} lines"}
        record(rec)
        return rec
    worst, same, total = 0.0, 0, 0
    for a, b in zip(a_rows, b_rows):
        if a.shape != b.shape:
            rec = {"name": name, "pass": False, "error": f"shape {a.shape} vs {b.shape}"}
            record(rec)
            return rec
        rel = float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
        if not np.isfinite(rel):
            rel = float("inf")
        worst = max(worst, rel)
        la, lb = a.argmax(axis=-1), b.argmax(axis=-1)
        same += int((la == lb).sum())
        total += la.size
    labels_required = os.environ.get("DEVCHECK_LABELS", "1") != "0"
    min_err = os.environ.get("DEVCHECK_MIN_ERR")
    ok = worst <= tol and (same == total or not labels_required)
    ok = ok and (min_err is None or worst > float(min_err))
    rec = {"name": name, "pass": ok or not required, "max_rel_err": f"{worst:.2e}",
           "tol": tol, "labels_identical": f"{same}/{total}"}
    if min_err is not None:
        rec["min_err"] = float(min_err)
    record(rec)
    return rec


def read_json_logits(path):
    with open(path) as f:
        return [np.asarray(json.loads(line), dtype=np.float64) for line in f if line.strip()]


def read_rows(path):
    with open(path) as f:
        return [np.asarray([[float(x) for x in line.split()]]) for line in f if line.strip()]


def read_classify(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                if "error" in o:
                    out.append(np.asarray([[np.nan]]))
                else:
                    out.append(np.asarray([list(o["scores"].values())], dtype=np.float64))
    return out


def classifier_prompt(text):
    """The chat prompt the classifier builds around a comment (src/core/classifier/prompt.c)."""
    return ("<bos><start_of_turn>user\nclassify the following comment into Hate, Extreme "
            "Hate or Not Hate: " + text.strip() + "<end_of_turn>\n<start_of_turn>model\n")


def write_prompt_ids(tok, texts, path):
    """Writes the prompts of texts as token ids (one JSON array per line) and returns what
    bench_forward and gemmaclf logits take with them: the ids all prompts share (each keeps at
    least one of its own) and the first tokens of the three labels. bench/gen_prompts.py and
    the GPU check both use it."""
    ids = [tok.encode(classifier_prompt(t), add_special_tokens=False).ids for t in texts]
    with open(path, "w") as f:
        for x in ids:
            f.write(json.dumps(x) + "\n")
    lcp = len(ids[0])
    for x in ids[1:]:
        n = 0
        while n < min(lcp, len(x)) and x[n] == ids[0][n]:
            n += 1
        lcp = n
    lcp = min(lcp, min(len(x) for x in ids) - 1)  # every prompt keeps >= 1 own token
    rows = [tok.encode(lab, add_special_tokens=False).ids[0]
            for lab in ("Not Hate", "Hate", "Extreme Hate")]
    mean = sum(len(x) for x in ids) / len(ids)
    return {"prefix": lcp, "rows": ",".join(map(str, rows)), "n": len(ids),
            "mean_tokens": round(mean, 1)}


def cmd_prompts(shared, outdir, *opts):
    """Token ids for the GPU check, so that the GPU machine needs no tokenizer."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    ref = os.path.join(shared, "reference")
    # hf-tiny: the fixture sequences
    for name in sorted(os.listdir(os.path.join(ref, "hf-tiny"))):
        t = load_file(os.path.join(ref, "hf-tiny", name, "reference_logits.safetensors"))
        seqs = sorted({k.split(".")[0] for k in t if k.endswith(".ids") and k.startswith("seq")},
                      key=lambda s: int(s[3:]))
        os.makedirs(os.path.join(outdir, "hf-tiny", name), exist_ok=True)
        with open(os.path.join(outdir, "hf-tiny", name, "ids.jsonl"), "w") as f:
            for s in seqs:
                f.write(json.dumps([int(x) for x in t[s + ".ids"].reshape(-1)]) + "\n")

    meta = {}
    # the trained classifier on the distinct dev comments it was evaluated on by transformers
    cls = os.path.join(ref, "hf-trained-classifier")
    with open(os.path.join(cls, "hf_predictions_dev.json")) as f:
        preds = json.load(f)["predictions"]
    tok = Tokenizer.from_file(os.path.join(cls, "tokenizer.json"))
    meta["classifier"] = write_prompt_ids(tok, [p["text"] for p in preds],
                                          os.path.join(outdir, "classifier_prompts.jsonl"))
    # the 270m-shaped benchmark: every dev comment with the real Gemma 3 tokenizer
    if "--no-bench" not in opts:
        with open(os.path.join(shared, "data", "indo-hatespeech", "dev.jsonl")) as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        tok = Tokenizer.from_file(os.path.join(ref, "gemma3-tokenizer", "tokenizer.json"))
        meta["bench"] = write_prompt_ids(tok, texts, os.path.join(outdir, "bench_prompts.jsonl"))
    with open(os.path.join(outdir, "prompts.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


def cmd_summary(path):
    recs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    checks = [r for r in recs if r.get("kind") != "speed"]
    speed = [r for r in recs if r.get("kind") == "speed"]
    print("\n== parity (relative error = max|a-b| / max(1, max|ref|) per line)")
    print(f"{'check':58} {'rel err':>9} {'tol':>7} {'labels':>12}  result")
    for r in checks:
        res = "ok" if r.get("pass", True) else "FAIL"
        if "error" in r:
            print(f"{r['name']:58} {'':>9} {'':>7} {'':>12}  {res}: {r['error']}")
        else:
            print(f"{r['name']:58} {r.get('max_rel_err', ''):>9} {r.get('tol', ''):>7} "
                  f"{r.get('labels_identical', ''):>12}  {res}")
    print("\n== throughput, gemma-3-270m shape (random weights), dev prompts, comments/s")
    print(f"{'engine':16} {'mode':28} {'batch':>5} {'prompts/s':>10}  note")
    for r in speed:
        print(f"{r['engine']:16} {r['mode']:28} {r['batch']:>5} {r['per_s']:>10.1f}  "
              f"{r.get('labels', '')}")
    failed = [r["name"] for r in checks if not r.get("pass", True)]
    print("\nRESULT:", "FAIL (" + ", ".join(failed) + ")" if failed else "all required checks passed")
    return 1 if failed else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "prompts":
        cmd_prompts(*args)
        return 0
    if cmd == "summary":
        return cmd_summary(args[0])
    if cmd == "speed":
        # speed NAME ENGINE MODE BATCH PER_S [LABELS]
        rec = {"kind": "speed", "name": args[0], "engine": args[1], "mode": args[2],
               "batch": int(args[3]), "per_s": float(args[4]),
               "labels": args[5] if len(args) > 5 else ""}
        record(rec)
        return 0
    required = os.environ.get("DEVCHECK_REQUIRED", "1") != "0"
    name, a, b, tol = args[0], args[1], args[2], float(args[3])
    if cmd == "cmp-logits":
        rec = compare(name, read_json_logits(a), read_json_logits(b), tol, required)
    elif cmd == "cmp-rows":
        ra, rb = read_rows(a), read_rows(b)
        if len(args) > 4:  # a run with --limit: the first N lines of each, both must have them
            n = int(args[4])
            if min(len(ra), len(rb)) >= n:
                ra, rb = ra[:n], rb[:n]
            else:  # compare() reports the counts as a failure
                ra = ra[:n] if len(ra) < n else []
        rec = compare(name, ra, rb, tol, required)
    elif cmd == "cmp-classify":
        rec = compare(name, read_classify(a), read_classify(b), tol, required)
    elif cmd == "cmp-hf":
        with open(b) as f:
            preds = json.load(f)["predictions"]
        ref = [np.asarray([p["label_first_token_logits"]]) for p in preds]
        rec = compare(name, read_rows(a), ref, tol, required)
    else:
        print(__doc__)
        return 2
    return 0 if rec.get("pass", True) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
