#!/usr/bin/env python3
"""Fuzz suite of gemmaclf's PostgreSQL path (issue 10), run by test/pg_fuzz.sh in a throwaway
cluster (PGHOST, PGPORT, PGUSER, PGDATABASE set; the user is a superuser).

Everything goes through SQL, as a careless superuser or a hostile user would: malformed model
directories through gemmaclf.model_path (truncations at many offsets, header mutations,
non-regular files, NaN/Inf weights, huge token ids, symlink loops, missing files, broken
config/tokenizer/label files), model files changed under a loaded model, hostile texts and
arrays (invalid UTF-8 in an SQL_ASCII database, huge texts, many NULLs, multi-dimensional
arrays), and settings at their limits.

A case passes when the server survives it, it ends within its time, its outcome is the expected
one (a result, an ERROR, or either), any text it must mention is there, everything the server
sent back is valid UTF-8, and (where set) the backend's peak memory stays under a bound. At the
end: the postmaster did not restart (pg_postmaster_start_time(), and the checkpointer's PID,
since a crash-restart keeps the postmaster's start time) and the server log has no
"terminated by signal". Deterministic: one fixed seed; only stdlib.

Prints failures, per-group counts, "pgfuzz: N cases, C crashes, H hangs" and the tally line
"pgfuzz: N passed, M failed"; exits non-zero on any failure."""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SEED = 20261128
SHARED = os.environ.get("GC_SHARED", "../shared")
FIXTURE = os.path.join(SHARED, "reference/hf-tiny/tiny_untied_tok4k")
FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
CASE_TIMEOUT = 60  # seconds a case may take client-side before it counts as a hang
rng = random.Random(SEED)


class Case:
    def __init__(self, group, name, sql, expect="any", need=None, db="postgres", fresh=False,
                 rss_mb=None):
        self.group, self.name, self.sql, self.expect, self.need = group, name, sql, expect, need
        self.db, self.fresh, self.rss_mb = db, fresh, rss_mb
        self.outcome, self.why, self.peak_mb = None, None, None


def q(s):
    """An SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def classify_sql(path):
    return f"SET gemmaclf.model_path = {q(path)};\nSELECT 'RESULT ' || classify_hate('Sali');\n"


# ---- model directories -------------------------------------------------------------------


class Models:
    """Model directories under root: a pristine copy (base) and mutants, each holding symlinks
    to base for the files it leaves alone (so unchanged weights share one cache copy)."""

    def __init__(self, root):
        self.root = root
        self.n = 0
        self.base = os.path.join(root, "base")
        os.mkdir(self.base)
        for f in FILES:
            shutil.copy(os.path.join(FIXTURE, f), os.path.join(self.base, f))
        with open(os.path.join(self.base, "model.safetensors"), "rb") as fh:
            self.st = fh.read()
        self.hlen = struct.unpack("<Q", self.st[:8])[0]
        self.header = json.loads(self.st[8:8 + self.hlen])
        self.data = self.st[8 + self.hlen:]

    def new(self, files=None):
        """A directory with files {name: bytes | callable(path)} and symlinks to base for the
        rest (a name mapped to None is left out)."""
        self.n += 1
        d = os.path.join(self.root, f"m{self.n:03d}")
        os.mkdir(d)
        files = files or {}
        for f in FILES:
            if f not in files:
                os.symlink(os.path.join(self.base, f), os.path.join(d, f))
        for name, content in files.items():
            p = os.path.join(d, name)
            if content is None:
                continue
            if callable(content):
                content(p)
            else:
                with open(p, "wb") as fh:
                    fh.write(content)
        return d

    def base_bytes(self, name):
        with open(os.path.join(self.base, name), "rb") as fh:
            return fh.read()

    def st_with_header(self, header, data=None, hlen=None):
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h) if hlen is None else hlen) + h + (self.data if data is None else data)

    def st_fill(self, tensor, value):
        """The weights with every float of tensor set to value."""
        a, b = self.header[tensor]["data_offsets"]
        d = bytearray(self.data)
        d[a:b] = struct.pack("<f", value) * ((b - a) // 4)
        return self.st_with_header(self.header, bytes(d))

    def st_poke(self, tensor, value, index=0):
        """The weights with one float of tensor set to value."""
        off = self.header[tensor]["data_offsets"][0] + 4 * index
        d = bytearray(self.data)
        d[off:off + 4] = struct.pack("<f", value)
        return self.st_with_header(self.header, bytes(d))


def model_cases(m):
    cases = []
    add = lambda *a, **k: cases.append(Case(*a, **k))
    size, hlen = len(m.st), m.hlen

    # truncations of model.safetensors: none loads, none crashes
    offsets = sorted({0, 1, 4, 7, 8, 9, 16, 100, hlen // 2, hlen + 7, hlen + 8, hlen + 9,
                      hlen + 108, size // 4, size // 2, 3 * size // 4, size - 4, size - 1} |
                     {rng.randrange(8, size) for _ in range(10)})
    for off in offsets:
        d = m.new({"model.safetensors": m.st[:off]})
        add("truncated weights", f"model.safetensors cut at {off} of {size} bytes",
            classify_sql(d), "error", "model.safetensors")

    # random byte mutations of the header (1-4 bytes; mostly JSON punctuation and digits)
    for i in range(40):
        b = bytearray(m.st[:8 + hlen])
        for _ in range(1 + i % 4):
            pos = rng.randrange(0, 8 + hlen) if i % 5 else rng.randrange(0, 8)
            b[pos] = rng.choice(b'0123456789[]{},:"-eE.') if i % 3 else rng.randrange(256)
        d = m.new({"model.safetensors": bytes(b) + m.data})
        add("header mutations", f"random header mutation {i}", classify_sql(d))

    # structured header mutations
    emb, norm = "model.embed_tokens.weight", "model.norm.weight"
    def mutated(fn, **kw):
        h = json.loads(json.dumps(m.header))
        fn(h)
        return m.st_with_header(h, **kw)
    structured = [
        ("header length 2^63", struct.pack("<Q", 1 << 63) + m.st[8:], "error"),
        ("header length 0", struct.pack("<Q", 0) + m.st[8:], "error"),
        ("header length past the end", struct.pack("<Q", size) + m.st[8:], "error"),
        ("embeddings as BF16", mutated(lambda h: h[emb].update(dtype="BF16")), "error"),
        ("embeddings as F64", mutated(lambda h: h[emb].update(dtype="F64")), "error"),
        ("embeddings as I8", mutated(lambda h: h[emb].update(dtype="I8")), "error"),
        ("unknown dtype", mutated(lambda h: h[emb].update(dtype="Q4_K")), "error"),
        ("norm shape [64, 1]", mutated(lambda h: h[norm].update(shape=[64, 1])), "error"),
        ("norm shape [-1]", mutated(lambda h: h[norm].update(shape=[-1])), "error"),
        ("norm shape [1e30]", mutated(lambda h: h[norm].update(shape=[1e30])), "error"),
        ("shape overflowing 64 bits", mutated(lambda h: h[norm].update(shape=[2**32] * 3)), "error"),
        ("empty data_offsets", mutated(lambda h: h[norm].update(data_offsets=[0, 0])), "error"),
        ("reversed data_offsets", mutated(lambda h: h[norm].update(
            data_offsets=h[norm]["data_offsets"][::-1])), "error"),
        ("data_offsets past the end", mutated(lambda h: h[norm].update(
            data_offsets=[len(m.data) - 128, len(m.data) + 128])), "error"),
        ("overlapping tensors", mutated(lambda h: h[norm].update(
            data_offsets=[h[emb]["data_offsets"][0], h[emb]["data_offsets"][0] + 256])), "error"),
        ("missing tensor", mutated(lambda h: h.pop("model.layers.1.self_attn.q_norm.weight")), "error"),
        ("metadata not an object", mutated(lambda h: h.update(__metadata__=[1])), "error"),
        ("metadata nested 5000 deep", None, "error"),
        ("header padded with spaces", None, "ok"),
        ("header with trailing garbage", None, "error"),
        ("a tensor entry that is a string", mutated(lambda h: h.update({norm: "x"})), "error"),
        ("data area cut off", m.st_with_header(m.header, data=b""), "error"),
    ]
    for name, content, expect in structured:
        if name == "metadata nested 5000 deep":
            h = json.dumps(m.header)[:-1] + ', "__deep": ' + "[" * 5000 + "]" * 5000 + "}"
            content = struct.pack("<Q", len(h)) + h.encode() + m.data
        elif name == "header padded with spaces":
            h = json.dumps(m.header).encode() + b" " * 13
            content = struct.pack("<Q", len(h)) + h + m.data
        elif name == "header with trailing garbage":
            h = json.dumps(m.header).encode() + b"}}garbage"
            content = struct.pack("<Q", len(h)) + h + m.data
        add("header mutations", name, classify_sql(m.new({"model.safetensors": content})), expect)

    # non-regular and missing files, for every file of a model directory
    def fifo(p):
        os.mkfifo(p, 0o644)
    kinds = {
        "a FIFO": fifo,
        "/dev/zero": lambda p: os.symlink("/dev/zero", p),
        "a directory": lambda p: os.mkdir(p),
        "a symlink loop": lambda p: (os.symlink(p + ".b", p), os.symlink(p, p + ".b")),
        "a dangling symlink": lambda p: os.symlink(p + ".nowhere", p),
        "missing": None,
    }
    optional = {"gemmaclf.json", "model.safetensors.index.json", "tokenizer_config.json"}
    for f in FILES + ["gemmaclf.json", "model.safetensors.index.json"]:
        for kind, make in kinds.items():
            absent = kind in ("missing", "a dangling symlink")
            if f in optional and absent:
                expect = "ok" if f != "tokenizer_config.json" else "any"
            else:
                expect = "error"
            need = "not a regular file" if kind in ("a FIFO", "/dev/zero") and f != "config.json" else None
            d = m.new({f: make})
            add("non-regular files", f"{f} is {kind}", classify_sql(d), expect, need)
    # the directory itself
    loop = os.path.join(m.root, "dirloop")
    os.symlink(loop + "2", loop)
    os.symlink(loop, loop + "2")
    fifo_dir = os.path.join(m.root, "fifo-as-dir")
    os.mkfifo(fifo_dir, 0o644)
    for name, path in [("a symlink loop", loop), ("a FIFO", fifo_dir), ("/dev/zero", "/dev/zero"),
                       ("/proc/self", "/proc/self"), ("/", "/"), ("relative", "relative/dir"),
                       ("missing", os.path.join(m.root, "nowhere"))]:
        add("non-regular files", f"model_path is {name}", classify_sql(path), "error")

    # weights that compute NaN or Inf
    nan, inf = float("nan"), float("inf")
    for name, content in [
        ("final norm NaN", m.st_poke(norm, nan)),
        ("final norm +Inf", m.st_poke(norm, inf)),
        ("embedding of <bos> -Inf", m.st_poke(emb, -inf, 2 * 64 + 5)),
        ("lm_head all NaN", m.st_fill("lm_head.weight", nan)),
        ("layer 0 q_proj NaN", m.st_poke("model.layers.0.self_attn.q_proj.weight", nan)),
        ("layer 2 down_proj 3e38", m.st_poke("model.layers.2.mlp.down_proj.weight", 3e38)),
    ]:
        add("NaN/Inf weights", name, classify_sql(m.new({"model.safetensors": content})),
            "any" if "3e38" in name else "error", None if "3e38" in name else "non-finite")

    # tokenizer.json: huge ids, truncations, invalid bytes, random flips
    tok = m.base_bytes("tokenizer.json")
    def tok_sub(old, new):
        assert old in tok, old
        return tok.replace(old, new, 1)
    for name, content, expect, need in [
        ("vocab id 100,000,000", tok_sub(b'"<eos>": 1,', b'"<eos>": 100000000,'), "error", "far beyond"),
        ("vocab id 2^31-2", tok_sub(b'"<eos>": 1,', b'"<eos>": 2147483646,'), "error", None),
        ("vocab id -1", tok_sub(b'"<eos>": 1,', b'"<eos>": -1,'), "error", None),
        ("vocab id 1e9 as float", tok_sub(b'"<eos>": 1,', b'"<eos>": 1e9,'), "error", None),
        ("post_processor id 100,000,000", tok_sub(b'"ids": [2]', b'"ids": [100000000]'), "error", None),
        ("added token id 99,999,999 (ignored, as HF does)",
         tok_sub(b'{"id": 3, "content": "<unk>"', b'{"id": 99999999, "content": "<unk>"'), "ok", None),
        ("invalid UTF-8 in a merge", tok_sub(b'"merges": [', b'"merges": ["\xff\xfe\xc3 \xe2\x82", '),
         "error", None),
        ("invalid UTF-8 in a vocab key", tok_sub(b'"<eos>": 1,', b'"<eos>": 1, "\xff\xc3": 4095,'),
         "any", None),
        ("vocab nested 5000 deep", tok_sub(b'"vocab": {', b'"deep": ' + b"[" * 5000 + b"]" * 5000 + b', "vocab": {'),
         "any", None),
    ]:
        grp = "huge ids" if "id" in name else "tokenizer.json"
        fresh = name == "vocab id 100,000,000"
        sql = classify_sql(m.new({"tokenizer.json": content}))
        add(grp, name, sql + (RSS_SQL if fresh else ""), expect, need, fresh=fresh,
            rss_mb=300 if fresh else None)
    for off in sorted({0, 1, 100, len(tok) // 3, len(tok) // 2, len(tok) - 2} |
                      {rng.randrange(1, len(tok)) for _ in range(6)}):
        add("tokenizer.json", f"cut at {off} of {len(tok)} bytes",
            classify_sql(m.new({"tokenizer.json": tok[:off]})), "error")
    for i in range(12):
        b = bytearray(tok)
        for _ in range(1 + i % 3):
            b[rng.randrange(len(b))] = rng.choice(b'{}[]",:0123456789\\') if i % 2 else rng.randrange(256)
        add("tokenizer.json", f"random mutation {i}", classify_sql(m.new({"tokenizer.json": bytes(b)})))

    # config.json
    cfg = json.loads(m.base_bytes("config.json"))
    def cfg_with(**kw):
        c = dict(cfg)
        c.update(kw)
        return json.dumps(c).encode()
    for name, content, expect in [
        ("vocab_size 1e9", cfg_with(vocab_size=10**9), "error"),
        ("100,000 layers", cfg_with(num_hidden_layers=100000), "error"),
        ("hidden_size 0", cfg_with(hidden_size=0), "error"),
        ("hidden_size -64", cfg_with(hidden_size=-64), "error"),
        ("hidden_size as a string", cfg_with(hidden_size="64"), "error"),
        ("head_dim 2^40", cfg_with(head_dim=2**40), "error"),
        ("layer_types too short", cfg_with(layer_types=["full_attention"]), "error"),
        ("max_position_embeddings 1", cfg_with(max_position_embeddings=1), "any"),
        ("rms_norm_eps NaN", cfg_with().replace(b'"rms_norm_eps": 1e-06', b'"rms_norm_eps": NaN'), "error"),
        ("1 MB string value", cfg_with(model_type="x" * (1 << 20)), "any"),
        ("invalid UTF-8 in a key", cfg_with().replace(b'"model_type"', b'"model\xff\xfe_type"', 1), "any"),
        ("nested 5000 deep", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "error"),
        ("empty file", b"", "error"),
        ("null", b"null", "error"),
        ("an array", b"[]", "error"),
    ]:
        add("config.json", name, classify_sql(m.new({"config.json": content})), expect)

    # gemmaclf.json (labels, prompt, bias)
    for name, content, expect, need in [
        ("no labels", b'{"labels": []}', "error", None),
        ("1000 labels", json.dumps({"labels": [f"L{i}" for i in range(1000)]}).encode(), "any", None),
        ("bias 1e999", b'{"score_bias": {"Hate": 1e999}}', "error", "finite"),
        ("bias -1e999", b'{"score_bias": {"Hate": -1e999}}', "error", "finite"),
        ("1 MB prompt prefix", json.dumps({"prompt_prefix": "x " * (1 << 19)}).encode(), "any", None),
        ("invalid UTF-8 label", b'{"labels": ["Not Hate", "H\xffte"]}', "any", None),
        # the error quotes the unknown label's raw bytes: the DETAIL must still be valid UTF-8
        ("bias for an invalid UTF-8 label", b'{"score_bias": {"H\xff\xfe\xc3te": 1}}', "error",
         "H\ufffd\ufffd\ufffdte"),
        ("duplicate labels", b'{"labels": ["Hate", "Hate"]}', "any", None),
        ("labels not strings", b'{"labels": [1, 2]}', "error", None),
        ("nested 5000 deep", b'{"labels": ' + b"[" * 5000 + b"]" * 5000 + b"}", "error", None),
        ("2 MB file", b'{"prompt_prefix": "' + b"y" * (2 << 20) + b'"}', "error", None),
    ]:
        add("gemmaclf.json", name, classify_sql(m.new({"gemmaclf.json": content})), expect, need)
    return cases + ngram_head_cases(m)


LABELS = ["Not Hate", "Hate", "Extreme Hate"]


def ngram_head(buckets=16, labels=LABELS, fmt="gemmaclf-ngram-1", poke=None, shapes=None):
    """An n-gram head file (train/ngram_head.py's format) with small valid values; poke = (tensor,
    index, float) sets one value, shapes overrides a tensor's declared shape."""
    L = len(LABELS)
    tensors = {"bias": [0.1 * i for i in range(L)], "idf_chars": [1.5] * buckets,
               "idf_words": [2.0] * buckets, "weight": [((i * 7) % 5 - 2) / 4 for i in range(L * 2 * buckets)]}
    shape = {"bias": [L], "idf_chars": [buckets], "idf_words": [buckets], "weight": [L, 2 * buckets]}
    shape.update(shapes or {})
    if poke:
        tensors[poke[0]][poke[1]] = poke[2]
    header, data = {"__metadata__": {"format": fmt, "labels": "\n".join(labels)}}, b""
    for k in sorted(tensors):
        b = struct.pack("<%df" % len(tensors[k]), *tensors[k])
        header[k] = {"dtype": "F32", "shape": shape[k], "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def ngram_head_cases(m):
    """gemmaclf.json's ngram_weight and the n-gram head file (ngram_head.safetensors): a bad head
    is an error at load naming the file, never a crash; a good one classifies."""
    cases = []
    on = json.dumps({"labels": LABELS, "ngram_weight": 0.5}).encode()
    good = ngram_head()
    for name, files, expect, need in [
        ("head on, file valid", {"ngram_head.safetensors": good}, "ok", None),
        ("head off (weight 0), file invalid", {"ngram_head.safetensors": b"junk",
                                                "gemmaclf.json": json.dumps({"ngram_weight": 0}).encode()}, "ok", None),
        ("head on, file missing", {}, "error", "ngram_head.safetensors"),
        ("ngram_weight 2", {"gemmaclf.json": b'{"ngram_weight": 2}', "ngram_head.safetensors": good}, "error", "ngram_weight"),
        ("ngram_weight -0.1", {"gemmaclf.json": b'{"ngram_weight": -0.1}', "ngram_head.safetensors": good}, "error", "ngram_weight"),
        ("ngram_weight a string", {"gemmaclf.json": b'{"ngram_weight": "0.5"}', "ngram_head.safetensors": good}, "error", "ngram_weight"),
        ("head file empty", {"ngram_head.safetensors": b""}, "error", "ngram_head.safetensors"),
        ("head file truncated", {"ngram_head.safetensors": good[:len(good) - 5]}, "error", "ngram_head.safetensors"),
        ("head: NaN weight", {"ngram_head.safetensors": ngram_head(poke=("weight", 3, float("nan")))}, "error", "non-finite"),
        ("head: Inf bias", {"ngram_head.safetensors": ngram_head(poke=("bias", 0, float("inf")))}, "error", "non-finite"),
        ("head: negative idf", {"ngram_head.safetensors": ngram_head(poke=("idf_words", 1, -1.0))}, "error", "negative idf"),
        ("head: other labels", {"ngram_head.safetensors": ngram_head(labels=["Hate", "Not Hate", "Extreme Hate"])}, "error", "labels"),
        ("head: other format", {"ngram_head.safetensors": ngram_head(fmt="gemmaclf-ngram-9")}, "error", "format"),
        ("head: 12 buckets", {"ngram_head.safetensors": ngram_head(buckets=12)}, "error", "power of two"),
        ("head: weight shape lies", {"ngram_head.safetensors": ngram_head(shapes={"weight": [3, 1 << 40]})}, "error", "ngram_head.safetensors"),
        ("head: 2^30 buckets declared", {"ngram_head.safetensors": ngram_head(shapes={"idf_chars": [1 << 30]})}, "error", "ngram_head.safetensors"),
        ("head file is a directory", {"ngram_head.safetensors": lambda p: os.mkdir(p)}, "error", "ngram_head.safetensors"),
    ]:
        files = dict(files)
        files.setdefault("gemmaclf.json", on)
        cases.append(Case("ngram head", name, classify_sql(m.new(files)), expect, need))
    # the backend maps the head's checked copy in the weight cache (shared by every backend),
    # never the user's file and never a private copy
    maps = ("SELECT 'RESULT ' || count(*) || ' head mappings' FROM regexp_matches("
            "pg_read_file('/proc/self/maps'), 'gemmaclf_cache/gemmaclf-[0-9a-f]{16}\\.ngram', 'g');\n")
    shared = m.new({"gemmaclf.json": on, "ngram_head.safetensors": good})
    cases.append(Case("ngram head", "head on: mapped from the weight cache", classify_sql(shared) + maps,
                      "ok", "RESULT 1 head mappings"))
    return cases


RSS_SQL = ("SELECT 'VMHWM ' || (regexp_match(pg_read_file('/proc/self/status'), "
           "'VmHWM:\\s+(\\d+)'))[1];\n")


def live_cases(m):
    """A model directory changed on disk under a loaded model, in one session: in place
    (truncate, cp over: same inode), replaced by a FIFO, removed. Never a crash; a reload."""
    d = os.path.join(m.root, "live")
    os.mkdir(d)
    for f in FILES:
        shutil.copy(os.path.join(m.base, f), os.path.join(d, f))
    os.chmod(d, 0o755)
    st, tokp = os.path.join(d, "model.safetensors"), os.path.join(d, "tokenizer.json")
    base_st = os.path.join(m.base, "model.safetensors")
    nan_st = os.path.join(m.root, "nan.safetensors")
    with open(nan_st, "wb") as fh:
        fh.write(m.st_poke("model.norm.weight", float("nan")))
    sel = "SELECT 'RESULT ' || classify_hate('Sali');\n"
    steps = [
        ("load", "", "ok", None),
        ("truncated in place to 64 bytes", f"\\! truncate -s 64 {st}\n", "error", "model.safetensors"),
        ("truncated to 0 bytes", f"\\! truncate -s 0 {st}\n", "error", "model.safetensors"),
        ("cp over it (same inode) again", f"\\! cp {base_st} {st}\n", "ok", None),
        ("cp -p of NaN weights over it", f"\\! cp -p {nan_st} {st}\n", "error", "non-finite"),
        ("cp the good weights back", f"\\! cp {base_st} {st}\n", "ok", None),
        ("half the data zeroed in place",
         f"\\! dd if=/dev/zero of={st} bs=1 seek={len(m.st) // 2} count=4096 conv=notrunc status=none\n",
         "any", None),
        ("cp the good weights back", f"\\! cp {base_st} {st}\n", "ok", None),
        ("tokenizer.json replaced by a FIFO", f"\\! rm {tokp} && mkfifo -m 644 {tokp}\n", "error",
         "not a regular file"),
        ("tokenizer.json back", f"\\! rm {tokp} && cp {m.base}/tokenizer.json {tokp}\n", "ok", None),
        ("the directory removed", f"\\! rm -rf {d}\n", "error", None),
    ]
    cases = []
    for i, (name, shell, expect, need) in enumerate(steps):
        sql = (f"SET gemmaclf.model_path = {q(d)};\n" if i == 0 else "") + shell + sel
        cases.append(Case("live changes", name, sql, expect, need))
    return cases


def disk_full_cases(m, data_dir):
    """A full file system under the weight cache ($PGDATA/gemmaclf_cache, a 64 KiB tmpfs mounted
    over it for these cases): loading a model is a clean ERROR naming ENOSPC, never a SIGBUS,
    and no temporary file stays behind. Needs root (mount); else skipped."""
    cache = os.path.join(data_dir, "gemmaclf_cache")
    owner = os.stat(data_dir)
    bf16 = os.path.join(SHARED, "reference/hf-tiny/tiny_mqa_bf16_scaled")
    d_bf16 = m.new({"config.json": m_read(bf16, "config.json"),
                    "model.safetensors": m_read(bf16, "model.safetensors")})
    d_f32 = m.new({"model.safetensors": m.st})  # a new file: its copy is not in the cache yet
    mount = (f"\\! mkdir -p {cache} && mount -t tmpfs -o size=64k,uid={owner.st_uid},"
             f"gid={owner.st_gid},mode=700 gemmaclf-pgfuzz {cache}\n")
    tmp_count = ("SELECT 'RESULT ' || count(*) || ' temporary files' FROM pg_ls_dir('gemmaclf_cache') f "
                 "WHERE f LIKE '.gemmaclf-tmp-%';\n")
    return [
        Case("full disk", "BF16 weights converted onto a full disk", mount + classify_sql(d_bf16),
             "error", "No space left on device"),
        Case("full disk", "F32 weights copied onto a full disk", classify_sql(d_f32), "error",
             "No space left on device"),
        Case("full disk", "no temporary file left behind", tmp_count, "ok", "RESULT 0 temporary"),
        Case("full disk", "space again: the F32 copy loads",
             f"\\! umount {cache}\n" + classify_sql(d_f32), "ok"),
    ]


def m_read(d, name):
    with open(os.path.join(d, name), "rb") as fh:
        return fh.read()


def text_cases(m):
    """Hostile texts and arrays, and settings at their limits, with the base model."""
    use = f"SET gemmaclf.model_path = {q(m.base)};\n"
    r = lambda expr: use + f"SELECT 'RESULT ' || ({expr})::text;\n"
    cases = []
    add = lambda *a, **k: cases.append(Case(*a, **k))
    for name, expr in [
        ("empty", "classify_hate('')"),
        ("blanks", "classify_hate(E' \\t\\n ')"),
        ("10 MB", "classify_hate(repeat('abc ', 2500000))"),
        ("2M emoji", "classify_hate(repeat(U&'\\+01F600', 2000000))"),
        ("chat markers", "classify_hate(repeat('<start_of_turn>user\n<end_of_turn><bos>', 1000))"),
        ("control characters", "classify_hate(E'\\x01\\x02\\x1b[31m\\x7f')"),
        ("U+10FFFF, U+FFFD, BOM", "classify_hate(U&'\\+10FFFF\\FFFD\\FEFF x')"),
        ("scores of 10 MB", "classify_hate_scores(repeat('x', 10000000)) ->> 'label'"),
        ("100,000 NULLs", "array_length(classify_hate(array_fill(NULL::text, ARRAY[100000])), 1)"),
        ("NULLs and texts", "classify_hate(ARRAY[NULL, 'Sali', NULL, ''])"),
        ("empty array", "classify_hate('{}'::text[])"),
        ("2-D array", "classify_hate(ARRAY[['a','b'],['c','d']])"),
        ("3-D array", "classify_hate(ARRAY[[['a']],[['b']]])"),
        ("lower bound 5", "classify_hate('[5:7]={a,b,c}'::text[])"),
        ("20,000 texts", "array_length(classify_hate(array_fill('x'::text, ARRAY[20000])), 1)"),
        ("NULL text", "coalesce(classify_hate(NULL::text), 'null')"),
    ]:
        add("texts and arrays", name, r(expr),
            "any" if "-D" in name or "lower bound" in name else "ok")
    # invalid UTF-8 in an SQL_ASCII database, where any byte string is a text
    for name, lit in [("0xff 0xfe", "E'\\xff\\xfe\\xfd'"), ("lone lead byte", "E'ok \\xc3'"),
                      ("cut 3-byte char", "E'\\xe2\\x82'"), ("overlong slash", "E'\\xc0\\xaf'"),
                      ("surrogate", "E'\\xed\\xa0\\x80'"), ("mixed", "E'Sali \\xff chup \\xfe kar'")]:
        add("SQL_ASCII texts", name, r(f"classify_hate({lit})"), "ok", db="gcfuzz_ascii")
    add("SQL_ASCII texts", "array of invalid texts",
        r("classify_hate(ARRAY[E'\\xff', E'\\xc3\\x28', NULL])"), "ok", db="gcfuzz_ascii")
    # 150 MB of invalid bytes: cut before repair, so the repair costs KB, not 450 MB
    add("SQL_ASCII texts", "150 MB of invalid bytes, peak memory",
        r("classify_hate(repeat(E'\\xff', 150000000))") + RSS_SQL, "ok",
        db="gcfuzz_ascii", fresh=True, rss_mb=450)
    # settings at their limits (set as the superuser the suite runs as); a refused SET leaves
    # the setting alone, so the classification after it still works ("both")
    for name, setting, expect in [
        ("max_input_tokens 1", "gemmaclf.max_input_tokens = 1", "ok"),
        ("max_input_tokens 8192", "gemmaclf.max_input_tokens = 8192", "ok"),
        ("max_input_tokens 0", "gemmaclf.max_input_tokens = 0", "both"),
        ("max_input_tokens 8193", "gemmaclf.max_input_tokens = 8193", "both"),
        ("batch_size 1", "gemmaclf.batch_size = 1", "ok"),
        ("batch_size 4096", "gemmaclf.batch_size = 4096", "ok"),
        ("batch_size 4097", "gemmaclf.batch_size = 4097", "both"),
        ("threads 0", "gemmaclf.threads = 0", "ok"),
        ("threads 256", "gemmaclf.threads = 256", "ok"),
        ("threads -1", "gemmaclf.threads = -1", "both"),
        ("device cuda", "gemmaclf.device = 'cuda'", "any"),
        ("device bogus", "gemmaclf.device = 'tpu'", "both"),
    ]:
        sql = (f"SET {setting};\n" + r("classify_hate(ARRAY['Sali', repeat('bhai ', 3000)])") +
               "RESET gemmaclf.max_input_tokens; RESET gemmaclf.batch_size; "
               "RESET gemmaclf.threads; RESET gemmaclf.device;\n")
        add("settings", name, sql, expect)
    for name, path, expect in [
        ("model_path empty (bundled)", "", "any"),
        ("model_path 4 KB of /./", m.base + "/." * 2048, "any"),
        ("model_path with a NUL-like escape", m.base + "\\0", "error"),
    ]:
        sql = "".join(classify_sql(path) for _ in range(6)) + "RESET gemmaclf.model_path;\n"
        add("settings", name, sql, expect)
    return cases


# ---- running -------------------------------------------------------------------------------


def psql(db, script, timeout):
    """Runs script in one psql session; returns (exit code, or None when no new case started
    for `timeout` seconds; stdout bytes; stderr bytes). The two streams go to two files: each
    is in order, whatever either's buffering (a shared file would interleave them)."""
    env = dict(os.environ, PGOPTIONS="-c statement_timeout=30s -c client_min_messages=warning")
    cmd = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=0", "-d", db]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        inp.write(script.encode())
        inp.seek(0)
        p = subprocess.Popen(cmd, stdin=inp, stdout=out, stderr=err, env=env)
        markers, since, rc = -1, time.time(), None
        while True:
            try:
                rc = p.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            err.seek(0)  # stderr is unbuffered: its markers show progress at once
            n = err.read().count(b"@@")
            if n != markers:
                markers, since = n, time.time()
            elif time.time() - since > timeout:
                p.kill()
                p.wait()
                rc = None
                break
        out.seek(0)
        err.seek(0)
        return rc, out.read(), err.read()


def segments(stream):
    """{case number: [lines]} between the "@@case N" and "@@end N" markers of one stream."""
    segs, cur = {}, None
    for line in stream.split(b"\n"):
        mk = re.match(rb"@@(case|end) (\d+)$", line)
        if mk:
            cur = int(mk.group(2)) if mk.group(1) == b"case" else None
            if cur is not None:
                segs[cur] = []
            continue
        if cur is not None:
            segs[cur].append(line)
    return segs


def run_cases(cases):
    i = 0
    while i < len(cases):
        # a run: consecutive cases of one database, a fresh session starting one
        j = i + 1
        while j < len(cases) and cases[j].db == cases[i].db and not cases[j].fresh and \
                not cases[i].fresh:
            j += 1
        script = "".join(f"\\echo @@case {k}\n\\warn @@case {k}\n{cases[k].sql}"
                         f"\\echo @@end {k}\n\\warn @@end {k}\n" for k in range(i, j))
        rc, out, err = psql(cases[i].db, script, CASE_TIMEOUT)
        so, se = segments(out), segments(err)
        text = lambda k: b"\n".join(so.get(k, []) + se.get(k, []))
        ends = {int(x) for x in re.findall(rb"(?m)^@@end (\d+)$", err)}
        started = [k for k in se if k not in ends]
        for k in range(i, j):
            if k in ends:
                judge(cases[k], text(k))
        if len(ends) == j - i:
            i = j
            continue
        # psql stopped early: the case it was in crashed the server or hung
        k = started[0] if started else (max(ends) + 1 if ends else i)
        c = cases[k]
        if rc is None:
            c.outcome, c.why = "hang", f"no answer within {CASE_TIMEOUT} s"
        elif b"connection to server was lost" in err or b"terminated abnormally" in err:
            c.outcome, c.why = "crash", "the server closed the connection: " + tail(text(k))
        else:
            c.outcome, c.why = "fail", f"psql stopped (exit {rc}): " + tail(err)
        i = k + 1
        wait_for_server()


def tail(b):
    return b.decode("utf-8", "replace").strip().replace("\n", " | ")[-300:]


def judge(c, out):
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        c.outcome, c.why = "fail", f"invalid UTF-8 sent by the server ({e}): {tail(out)}"
        return
    got_result = "RESULT " in text
    got_error = "ERROR:" in text
    if "canceling statement due to statement timeout" in text:
        c.outcome, c.why = "hang", "statement_timeout: " + tail(out)
        return
    if "server closed the connection" in text or "connection to server was lost" in text:
        c.outcome, c.why = "crash", tail(out)
        return
    ok = {"ok": got_result and not got_error, "error": got_error and not got_result,
          "any": got_result or got_error, "both": got_result and got_error}[c.expect]
    why = None if ok else f"expected {c.expect}, got " + \
        ("result and error" if got_result and got_error else "result" if got_result else
         "error" if got_error else "nothing")
    if ok and c.need and c.need not in text:
        ok, why = False, f"output lacks {c.need!r}"
    if ok and c.rss_mb:
        mk = re.search(r"VMHWM (\d+)", text)
        c.peak_mb = int(mk.group(1)) // 1024 if mk else None
        if not mk or int(mk.group(1)) > c.rss_mb * 1024:
            ok, why = False, f"backend peak memory {int(mk.group(1)) // 1024 if mk else '?'} MB > {c.rss_mb} MB"
    c.outcome = "pass" if ok else "fail"
    c.why = None if ok else f"{why}: {tail(out)}"


def wait_for_server():
    for _ in range(60):
        if subprocess.run(["psql", "-X", "-At", "-c", "SELECT 1"], capture_output=True).returncode == 0:
            return
        time.sleep(1)


def server_state():
    rc, out, _ = psql("postgres", "SELECT 'STATE ' || pg_postmaster_start_time() || ' ' || "
                   "coalesce((SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'), 0);\n"
                   "SELECT 'LOG ' || current_setting('data_directory') || ' ' || "
                   "coalesce(pg_current_logfile(), '');\n", 60)
    st = re.search(rb"STATE (.*)", out)
    lg = re.search(rb"LOG (\S+) ?(\S*)", out)
    return (st.group(1).decode() if st else None), lg


def server_log(lg):
    """The server log: PGHOST/server.log (scripts/pg-test.sh's initdb clusters), the logging
    collector's file, or pg_virtualenv's log file."""
    cands = [os.path.join(os.environ.get("PGHOST", ""), "server.log")]
    if lg and lg.group(2):
        cands.append(os.path.join(lg.group(1).decode(), lg.group(2).decode()))
    conf = os.environ.get("PG_CLUSTER_CONF_ROOT")
    if conf:
        cands += [os.path.join(os.path.dirname(os.path.dirname(conf)), "log", f)
                  for f in sorted(os.listdir(os.path.join(os.path.dirname(os.path.dirname(conf)), "log")))
                  if os.path.isdir(os.path.join(os.path.dirname(os.path.dirname(conf)), "log"))]
    cands += [os.path.join("/var/log/postgresql", f) for f in
              (sorted(os.listdir("/var/log/postgresql")) if os.path.isdir("/var/log/postgresql") else [])
              if "regress" in f]
    for p in cands:
        if os.path.isfile(p):
            return p
    return None


def fix_modes(root):
    """The server (another user) reads everything made here."""
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p) and (os.path.isdir(p) or os.path.isfile(p)):
                os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)


def main():
    root = tempfile.mkdtemp(prefix="gemmaclf-pgfuzz-")
    os.chmod(root, 0o755)
    try:
        m = Models(root)
        cases = model_cases(m) + live_cases(m) + text_cases(m)
        fix_modes(root)
        setup = ("SET client_min_messages = warning;\n"
                 "CREATE EXTENSION IF NOT EXISTS gemmaclf;\n"
                 "DROP DATABASE IF EXISTS gcfuzz_ascii;\n"
                 "CREATE DATABASE gcfuzz_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
                 "TEMPLATE template0;\n")
        rc, out, err = psql("postgres", setup, 120)
        rc2, out2, err2 = psql("gcfuzz_ascii", "CREATE EXTENSION gemmaclf;\n", 60)
        out, out2 = out + err, out2 + err2
        if rc != 0 or rc2 != 0 or b"ERROR" in out + out2:
            print("pgfuzz: setup failed:", tail(out + out2))
            print("pgfuzz: 0 passed, 1 failed")
            return 1
        before, lg = server_state()
        log = server_log(lg)
        data_dir = lg.group(1).decode() if lg else None
        if os.geteuid() == 0 and data_dir:
            cases += disk_full_cases(m, data_dir)
            fix_modes(root)
        else:
            print("skipped: pgfuzz: the full-disk cases (they mount a tmpfs: root only)")
        log_start = os.path.getsize(log) if log else 0
        t0 = time.time()
        run_cases(cases)
        elapsed = time.time() - t0
        after, _ = server_state()
        crashes = sum(c.outcome == "crash" for c in cases)
        hangs = sum(c.outcome == "hang" for c in cases)
        signals = []
        if log:
            with open(log, "rb") as fh:
                fh.seek(log_start)
                signals = [l for l in fh.read().decode("utf-8", "replace").splitlines()
                           if "terminated by signal" in l]
        groups = {}
        for c in cases:
            g = groups.setdefault(c.group, [0, 0])
            g[0 if c.outcome == "pass" else 1] += 1
            if c.outcome != "pass":
                print(f"FAIL [{c.group}] {c.name}: {c.outcome}: {c.why}")
        for g, (p, f) in groups.items():
            print(f"  {g}: {p + f} cases, {f} failed")
        for c in cases:
            if c.rss_mb:
                print(f"  peak backend memory, {c.name}: {c.peak_mb} MB (bound {c.rss_mb} MB)")
        restarted = before is None or before != after
        print(f"postmaster and checkpointer before/after: {before} / {after}"
              f"{' (RESTARTED)' if restarted else ''}")
        print(f"server log {log or '(not found)'}: {len(signals)} 'terminated by signal' lines")
        for l in signals[:5]:
            print("  " + l)
        print(f"pgfuzz: {len(cases)} cases in {elapsed:.0f} s (seed {SEED}), {crashes} crashes, "
              f"{hangs} hangs")
        passed = sum(c.outcome == "pass" for c in cases)
        failed = len(cases) - passed + (1 if restarted or signals else 0)
        print(f"pgfuzz: {passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        with open("/proc/mounts") as fh:
            for line in fh:
                if line.startswith("gemmaclf-pgfuzz "):
                    subprocess.run(["umount", line.split()[1]])
        psql("postgres", "DROP DATABASE IF EXISTS gcfuzz_ascii;\n", 60)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
