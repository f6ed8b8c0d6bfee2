#!/usr/bin/env python3
"""Randomized comparison of `bin/gemmaclf tokenize` with Hugging Face tokenizers.

Random strings (Latin, Devanagari, emoji and ZWJ sequences, whitespace/newline/tab runs,
added-token strings and fragments, NUL, byte-fallback characters) are encoded by both, in
default mode (special tokens recognised) and --plain (tokenizers' encode_special_tokens=True),
with and without --add-special, and decoded back (--decode). Tokenizers: the real Gemma 3
one, tiny_untied_tok4k, and synthetic variants of tok4k that exercise the components the
references do not use (Prepend, Metaspace, Split behaviors, lstrip/rstrip and normalized
added tokens, ignore_merges, unk without byte fallback).

usage: test_tokenizer_random.py [--n N] [--seed S]   (GC_BIN, GC_SHARED from the environment)
A missing tokenizers package or CLI is a failure (nothing would be compared)."""
import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    from tokenizers import Tokenizer
except ImportError as exc:  # without the reference nothing is checked: a failure
    print(f"FAIL: tokenizers not importable ({exc})")
    print("test_tokenizer_random: 0 passed, 1 failed")
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("GC_BIN") or os.path.join(ROOT, "bin", "gemmaclf")
SHARED = os.environ.get("GC_SHARED") or os.path.join(ROOT, "..", "shared")
if not os.path.isabs(BIN):
    BIN = os.path.join(ROOT, BIN)
if not os.path.isabs(SHARED):
    SHARED = os.path.join(ROOT, SHARED)

LATIN = ["hello", "world", "Hate", "not", "teri", "maa", "bhai", "ram", "the", "ab", "a", "x",
         "Kya", "karr", "rhe", "ho", "tum", "log", "café", "naïve", "ÜNÏ", "123", "3.14", "@user",
         "#tag", "http://t.co/x", "ok", "lol", "Extreme", "classify"]
DEVA = ["नमस्ते", "दुनिया", "मादरचोद", "साला", "भाई", "ॐ", "नमः", "शिवाय", "क्ष", "ि"]
EMOJI = ["😂", "🚩", "🙏🏽", "👨‍👩‍👧‍👦", "🧑‍🚀", "🏳️‍🌈", "🇮🇳", "❤️", "😡", "\u200d", "\ufe0f"]
SPACE = [" ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", "\r\n", "\r", " \n ", "\u3000",
         "\u00a0", "\u2581", "\u2581\u2581", "\u200b", "\x0b", "\x0c", "\x1c", "\u2028"]
ADDED = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<b>", "</b>",
         "<table>", "<unused12>", "<unused0>", "<mask>", "[multimodal>", "<start_of_image>",
         "<start_of", "_of_turn>", "<", ">", "</", "<<b>>", "<unused", "user\n", "model\n",
         "hello", "<x>", "[SEP]"]
WEIRD = ["\x00", "\x01", "\x7f", "\ua9a7", "\U00010348", "\U000e0041", "\U0010ffff", "\ue000",
         "\u01c5", "\u202e", "\ufeff", "\u0301", "e\u0301", "ﬁ", "Ｆｕｌｌ"]


def random_text(rng):
    parts = []
    for _ in range(rng.randint(0, 14)):
        pool = rng.choice([LATIN, LATIN, DEVA, EMOJI, SPACE, SPACE, ADDED, WEIRD])
        item = rng.choice(pool)
        if rng.random() < 0.1:
            item = item * rng.randint(2, 40)
        parts.append(item)
        if rng.random() < 0.3:
            parts.append(" ")
    if rng.random() < 0.05:
        parts.append("".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 30))))
    return "".join(parts)


def run_cli(model_dir, args, lines):
    p = subprocess.run([BIN, "tokenize", model_dir] + args, input="".join(l + "\n" for l in lines),
                       capture_output=True, text=True, encoding="utf-8")
    if p.returncode != 0:
        return None, p.stderr.strip()
    return [json.loads(l) for l in p.stdout.split("\n") if l], None  # not splitlines: U+2028


def synthetic_variants(base):
    """tok4k with other components (the references only use Replace/Split/BPE)."""
    out = {}
    v = copy.deepcopy(base)
    v["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    v["pre_tokenizer"] = None
    out["prepend"] = v
    for scheme in ["always", "first", "never"]:
        v = copy.deepcopy(base)
        v["normalizer"] = None
        v["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                              "prepend_scheme": scheme, "split": scheme != "never"}
        v["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme,
                        "split": True}
        out["metaspace_" + scheme] = v
    for beh in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
        for inv in [False, True]:
            v = copy.deepcopy(base)
            v["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"String": "\u2581"}, "behavior": beh, "invert": inv}]}
            out["split_%s%s" % (beh, "_inv" if inv else "")] = v
    v = copy.deepcopy(base)
    nid = max(v["model"]["vocab"].values()) + 1
    extra = [("<x>", dict(lstrip=True, rstrip=False, normalized=False, special=False)),
             ("[SEP]", dict(lstrip=True, rstrip=True, normalized=False, special=True)),
             ("hello", dict(lstrip=False, rstrip=False, normalized=True, special=False)),
             ("ab c", dict(lstrip=False, rstrip=False, normalized=True, special=False)),
             ("\n", dict(lstrip=False, rstrip=True, normalized=False, special=False))]
    for i, (content, flags) in enumerate(extra):
        v["added_tokens"].append(dict(id=nid + i, content=content, single_word=False, **flags))
    v["decoder"]["decoders"].append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    out["added_flags"] = v
    v = copy.deepcopy(base)
    v["model"]["ignore_merges"] = True
    out["ignore_merges"] = v
    v = copy.deepcopy(base)
    v["model"]["byte_fallback"] = False
    v["model"]["fuse_unk"] = False
    out["unk_nofuse"] = v
    v = copy.deepcopy(v)
    v["model"]["fuse_unk"] = True
    out["unk_fuse"] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        print("test_tokenizer_random: %s not built" % BIN)
        print("test_tokenizer_random: 0 passed, 1 failed")
        return 1
    rng = random.Random(args.seed)
    texts = [random_text(rng) for _ in range(args.n)]
    gemma = os.path.join(SHARED, "reference", "gemma3-tokenizer")
    tok4k = os.path.join(SHARED, "reference", "hf-tiny", "tiny_untied_tok4k")
    tmp = tempfile.TemporaryDirectory()
    dirs = [("gemma3", gemma, args.n), ("tok4k", tok4k, args.n)]
    base = json.load(open(os.path.join(tok4k, "tokenizer.json"), encoding="utf-8"))
    for name, tj in synthetic_variants(base).items():
        d = os.path.join(tmp.name, name)
        os.makedirs(d)
        json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"))
        dirs.append((name, d, min(args.n, 400)))
    passed = failed = 0
    lines = [json.dumps(t) for t in texts]
    for name, d, n in dirs:
        hf = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        for mode in [[], ["--plain"], ["--add-special"], ["--plain", "--add-special"]]:
            hf.encode_special_tokens = "--plain" in mode
            want = [hf.encode(t, add_special_tokens="--add-special" in mode).ids for t in texts[:n]]
            got, err = run_cli(d, mode, lines[:n])
            if got is None:
                failed += 1
                print("FAIL %s %s: %s" % (name, " ".join(mode), err))
                continue
            bad = [i for i in range(n) if got[i] != want[i]]
            passed += n - len(bad)
            failed += len(bad)
            for i in bad[:3]:
                k = next((j for j in range(min(len(want[i]), len(got[i])))
                          if want[i][j] != got[i][j]), min(len(want[i]), len(got[i])))
                print("FAIL %s %s: %r\n  first difference at %d: hf %s ours %s" % (
                    name, " ".join(mode), texts[i][:200], k, want[i][k:k + 8], got[i][k:k + 8]))
            if mode == []:  # decode what HF produced, both with and without skipping specials
                hf.encode_special_tokens = False
                for skip in [False, True]:
                    dec, err = run_cli(d, ["--decode"] + (["--skip-special"] if skip else []),
                                       [json.dumps(w) for w in want])
                    if dec is None:
                        failed += 1
                        print("FAIL %s decode: %s" % (name, err))
                        continue
                    ref = [hf.decode(w, skip_special_tokens=skip) for w in want]
                    badd = [i for i in range(n) if dec[i] != ref[i]]
                    passed += n - len(badd)
                    failed += len(badd)
                    for i in badd[:3]:
                        print("FAIL %s decode(skip=%s): %r\n  hf   %r\n  ours %r" % (
                            name, skip, want[i][:40], ref[i][:200], dec[i][:200]))
    # chat prompts (Gemma chat template, one user turn + generation prompt) for the texts
    # without special-token strings, against HF encoding the rendered string
    prefix = "classify the following comment into Hate, Extreme Hate or Not Hate: "
    for name, d in [("gemma3", gemma), ("tok4k", tok4k)]:
        hf = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        hf.encode_special_tokens = False
        specials = [t.content for t in hf.get_added_tokens_decoder().values() if t.special]
        sel = [t for t in texts if not any(sp in t for sp in specials)]
        for pre in [prefix, ""]:
            want = [hf.encode("<bos><start_of_turn>user\n" + (pre + t.strip()).strip() +
                              "<end_of_turn>\n<start_of_turn>model\n",
                              add_special_tokens=False).ids for t in sel]
            got, err = run_cli(d, ["--chat", pre], [json.dumps(t) for t in sel])
            if got is None:
                failed += 1
                print("FAIL %s --chat: %s" % (name, err))
                continue
            bad = [i for i in range(len(sel)) if got[i] != want[i]]
            passed += len(sel) - len(bad)
            failed += len(bad)
            for i in bad[:3]:
                print("FAIL %s --chat %r: %r\n  hf   %s\n  ours %s" % (name, pre, sel[i][:200],
                                                                   want[i][:40], got[i][:40]))
    print("test_tokenizer_random: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
