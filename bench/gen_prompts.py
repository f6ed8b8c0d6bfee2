#!/usr/bin/env python3
"""Classification prompts as token ids for bench/bench_forward: the chat prompt the classifier
builds around each dev comment, encoded with a model's tokenizer.json.

  gen_prompts.py TOKENIZER_JSON DEV_JSONL OUT_IDS

Writes one JSON array of ids per line to OUT_IDS and prints {"prefix": P, "rows": "A,B,C"}: the
ids all prompts share (each keeps at least one of its own) and the first tokens of the three
labels, the arguments bench_forward takes."""
import json
import os
import sys

from tokenizers import Tokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from devcheck import write_prompt_ids  # noqa: E402  (the one prompt -> ids writer)


def main():
    tok_path, dev_path, out_path = sys.argv[1:4]
    tok = Tokenizer.from_file(tok_path)
    with open(dev_path) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    meta = write_prompt_ids(tok, texts, out_path)
    print(json.dumps({"prefix": meta["prefix"], "rows": meta["rows"]}))


if __name__ == "__main__":
    main()
