#!/usr/bin/env python3
"""Classification prompts as token ids for bench/bench_forward: the chat prompt the classifier
builds around each dev comment, encoded with a model's tokenizer.json.

  gen_prompts.py TOKENIZER_JSON DEV_JSONL OUT_IDS

Writes one JSON array of ids per line to OUT_IDS and prints {"prefix": P, "rows": "A,B,C"}: the
ids all prompts share (each keeps at least one of its own) and the first tokens of the three
labels, the arguments bench_forward takes."""
import json
import sys

from tokenizers import Tokenizer


def main():
    tok_path, dev_path, out_path = sys.argv[1:4]
    tok = Tokenizer.from_file(tok_path)
    with open(dev_path) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    ids = [tok.encode("<bos><start_of_turn>user\nclassify the following comment into Hate, "
                      "Extreme Hate or Not Hate: " + t.strip() +
                      "<end_of_turn>\n<start_of_turn>model\n", add_special_tokens=False).ids
           for t in texts]
    with open(out_path, "w") as f:
        for x in ids:
            f.write(json.dumps(x) + "\n")
    lcp = len(ids[0])
    for x in ids[1:]:
        n = 0
        while n < min(lcp, len(x)) and x[n] == ids[0][n]:
            n += 1
        lcp = n
    lcp = min(lcp, min(len(x) for x in ids) - 1)
    rows = [tok.encode(lab, add_special_tokens=False).ids[0]
            for lab in ("Not Hate", "Hate", "Extreme Hate")]
    print(json.dumps({"prefix": lcp, "rows": ",".join(map(str, rows))}))


if __name__ == "__main__":
    main()
