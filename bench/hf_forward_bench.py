#!/usr/bin/env python3
"""transformers' side of the forward-pass benchmark: one forward per batch of prompts, logits of
the last token only (logits_to_keep=1), restricted afterwards to the label rows. Same inputs and
output format as bench/bench_forward.c, so the two can be compared line by line.

  hf_forward_bench.py MODEL_DIR --ids FILE --rows A,B,C [--dtype float32|bfloat16]
                      [--batch 64] [--repeat R] [--device cuda] [--out FILE]

Batches are left-padded with an attention mask and positions counted from each prompt's first
token, so the logits are those of the unpadded prompt. The last stdout line is a JSON summary
like bench_forward's."""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--rows", required=True)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--attn", default=None, help="attn_implementation (default: transformers')")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = [int(x) for x in a.rows.split(",")]
    with open(a.ids) as f:
        prompts = [json.loads(line) for line in f if line.strip()]
    dtype = getattr(torch, a.dtype)
    kw = {"dtype": dtype}
    if a.attn:
        kw["attn_implementation"] = a.attn
    model = AutoModelForCausalLM.from_pretrained(a.model, **kw).to(a.device).eval()

    batches = []
    for b0 in range(0, len(prompts), a.batch):
        chunk = prompts[b0:b0 + a.batch]
        n = max(len(p) for p in chunk)
        ids = torch.zeros((len(chunk), n), dtype=torch.long)
        mask = torch.zeros((len(chunk), n), dtype=torch.long)
        for i, p in enumerate(chunk):
            ids[i, n - len(p):] = torch.tensor(p)
            mask[i, n - len(p):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        batches.append((ids.pin_memory() if a.device == "cuda" else ids,
                        mask.pin_memory() if a.device == "cuda" else mask, pos))
    row_idx = torch.tensor(rows, device=a.device)

    def run(b):
        ids, mask, pos = (x.to(a.device, non_blocking=True) for x in b)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1,
                    use_cache=False)
        return out.logits[:, -1, :].index_select(-1, row_idx).float()

    results = []
    with torch.inference_mode():
        run(batches[0])  # warm-up
        if a.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for r in range(a.repeat):
            res = [run(b) for b in batches]
            if r == 0:
                results = res
        if a.device == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
    if a.out:
        with open(a.out, "w") as f:
            for t in results:
                for row in t.cpu().tolist():
                    f.write(" ".join(f"{x:.9g}" for x in row) + "\n")
    n = len(prompts) * a.repeat
    print(json.dumps({"engine": "transformers", "dtype": a.dtype, "batch": a.batch,
                      "attn": model.config._attn_implementation, "prompts": n,
                      "seconds": round(secs, 4), "prompts_per_s": round(n / secs, 1)}))


if __name__ == "__main__":
    main()
