#!/usr/bin/env python3
"""Writes test/data/trained_classifier_ids.json: Hugging Face tokenizers' ids for the
hf-trained-classifier tokenizer (the label continuations, the first 150 distinct dev comments of
hf_predictions_dev.json as plain text, referenced by index, and their classification prompts rendered by the checkpoint's chat template
via transformers' apply_chat_template). test_tokenizer.c compares gemmaclf against it.

usage: .venv/bin/python test/python/gen_trained_classifier_ids.py [SHARED]"""
import json
import os
import sys

PREFIX = "classify the following comment into Hate, Extreme Hate or Not Hate: "


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GC_SHARED", "../shared")
    ref = os.path.join(shared, "reference", "hf-trained-classifier")
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok = Tokenizer.from_file(os.path.join(ref, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(ref)
    preds = json.load(open(os.path.join(ref, "hf_predictions_dev.json")))["predictions"]
    rows = []
    for label in ["Not Hate", "Hate", "Extreme Hate"]:
        rows.append({"mode": "text", "text": label, "ids": tok.encode(label, add_special_tokens=False).ids})
    # dev comments are referenced by their index in hf_predictions_dev.json (the data stays
    # in the shared folder; only the ids live in the repository)
    for i, p in enumerate(preds[:150]):
        text = p["text"]
        rows.append({"mode": "text", "dev": i, "ids": tok.encode(text, add_special_tokens=False).ids})
        msgs = [{"role": "user", "content": PREFIX + text.strip()}]
        ids = auto.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        rows.append({"mode": "prompt", "dev": i, "ids": list(ids)})
    out = {"note": "written by test/python/gen_trained_classifier_ids.py with tokenizers "
                   + __import__("tokenizers").__version__, "rows": rows}
    path = os.path.join(os.path.dirname(__file__), "..", "data", "trained_classifier_ids.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
