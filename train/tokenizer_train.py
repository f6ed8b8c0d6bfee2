"""Train a Gemma-style BPE tokenizer on the training comments.

Structure copied from the Gemma 3 tokenizer (and the reference 4,096-token classifier tokenizer):
normalizer Replace(" " -> "▁") (no Prepend), pre-tokenizer Split(" ", MergedWithPrevious),
BPE with byte_fallback and <unk>, decoder Replace("▁" -> " ") + ByteFallback + Fuse,
post-processor TemplateProcessing "<bos> $A".  Ids: <pad>=0 <eos>=1 <bos>=2 <unk>=3
<start_of_turn>=4 <end_of_turn>=5, byte tokens <0x00>..<0xFF> = 6..261, then the learned vocabulary.

Training uses a Metaspace(split) pre-tokenizer so that every merge stays inside one word ("▁" only at
the start of a token).  Applied over whole stretches (as Gemma's Split never splits after the
normalizer) such merges can never cross a word boundary, so the ids of the prompt prefix
"...Not Hate:" never depend on the comment (the C engine can reuse the prefix's KV cache).
"""
import json
import os
import shutil

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, decoders, processors, trainers

from common import LABELS, PROMPT_PREFIX, SPECIALS, REF_TOKCFG, load_split

N_BYTES = 256


def corpus(rows, template_copies=200):
    for r in rows:
        yield r["text"].strip()
    # the fixed template words and the labels: make them whole tokens (labels' first tokens distinct)
    for _ in range(template_copies):
        yield PROMPT_PREFIX.strip()
        yield "user model"
        for lab in LABELS:
            yield lab


def train_tokenizer(rows, vocab_size, out_dir, limit_alphabet=400):
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    n_learn = vocab_size - len(SPECIALS) - N_BYTES
    trainer = trainers.BpeTrainer(vocab_size=n_learn, special_tokens=[], limit_alphabet=limit_alphabet,
                                  show_progress=False, min_frequency=2)
    tok.train_from_iterator(corpus(rows), trainer=trainer)
    learned = json.loads(tok.to_str())["model"]
    # renumber: specials, bytes, then learned tokens in their order
    vocab = {}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    for b in range(N_BYTES):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = learned["merges"]
    assert len(vocab) <= vocab_size, len(vocab)
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(SPECIALS)],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                          "invert": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False, indent=1)
    with open(REF_TOKCFG, encoding="utf-8") as f:
        ref_cfg = json.load(f)
    cfg = {
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": "<bos>", "eos_token": "<end_of_turn>", "pad_token": "<pad>", "unk_token": "<unk>",
        "padding_side": "left", "tokenizer_class": "GemmaTokenizer", "model_max_length": 2048,
        "chat_template": ref_cfg["chat_template"],
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    tk = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    check_tokenizer(tk)
    return tk, len(vocab)


def copy_tokenizer(tokenizer_json, out_dir):
    """Reuse an existing tokenizer.json (with the reference chat template config)."""
    os.makedirs(out_dir, exist_ok=True)
    src_dir = os.path.dirname(os.path.abspath(tokenizer_json))
    if src_dir != os.path.abspath(out_dir):
        shutil.copy(tokenizer_json, os.path.join(out_dir, "tokenizer.json"))
        cfg_src = os.path.join(src_dir, "tokenizer_config.json")
        shutil.copy(cfg_src if os.path.isfile(cfg_src) else REF_TOKCFG, os.path.join(out_dir, "tokenizer_config.json"))
    tk = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    check_tokenizer(tk)
    return tk.get_vocab_size()


def label_first_ids(tk):
    ids = [tk.encode(lab + "<end_of_turn>\n", add_special_tokens=False).ids for lab in LABELS]
    return ids


def check_tokenizer(tk):
    firsts = [i[0] for i in label_first_ids(tk)]
    assert len(set(firsts)) == 3, "label first tokens collide: %r" % firsts
    # prefix ids must not depend on the comment
    from common import prompt_text
    pre = tk.encode(prompt_text("x")[: -len("x<end_of_turn>\n<start_of_turn>model\n")].rstrip(),
                    add_special_tokens=False).ids
    for c in ["hello", ":)", "▁x", "@abc", "😂😂", "  spaced", "तुम"]:
        ids = tk.encode(prompt_text(c), add_special_tokens=False).ids
        assert ids[: len(pre)] == pre, (c, ids[: len(pre) + 2], pre)


if __name__ == "__main__":
    import sys
    rows = load_split("train")
    out = sys.argv[1] if len(sys.argv) > 1 else "train/out/tok"
    vs = int(sys.argv[2]) if len(sys.argv) > 2 else 8192
    tk, n = train_tokenizer(rows, vs, out)
    print("vocab", n)
    from common import prompt_text
    dev = load_split("dev")
    import statistics
    lens = [len(tk.encode(r["text"].strip(), add_special_tokens=False).ids) for r in dev]
    print("dev comment tokens mean %.1f median %d" % (statistics.mean(lens), statistics.median(lens)))
    print(tk.encode(prompt_text("hello there ki maa"), add_special_tokens=False).tokens)
    print(label_first_ids(tk))
