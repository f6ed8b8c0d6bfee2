#!/usr/bin/env python3
"""Smoke test of the training recipe (train/recipe.py --smoke): a tiny model on a few hundred
comments. Checks that the tokenizer has the Gemma structure, that the TRL-rendered training prompt
is the prompt gemmaclf scores, that training lowers the answer loss, and that the exported
checkpoint loads with Gemma3ForCausalLM.from_pretrained and reproduces the training-time scores.

Prints "test_train_smoke: N passed, M failed"; exit 1 on failure."""
import json
import os
import subprocess
import sys
import tempfile

from tally import Tally

NAME = "test_train_smoke"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALLY = Tally(NAME)
check = TALLY.check


def main():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
        import tokenizers  # noqa: F401
        import datasets  # noqa: F401
    except ImportError as e:  # the recipe cannot run: a failure, not a skip
        check(False, "python package missing: %s" % e)
        return 1
    shared = os.environ.get("GC_SHARED", os.path.join(ROOT, "..", "shared"))
    if not os.path.isfile(os.path.join(shared, "data", "indo-hatespeech", "train.jsonl")):
        check(False, "data set not found under %s (set GC_SHARED)" % shared)
        return 1
    sys.path.insert(0, os.path.join(ROOT, "train"))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "smoke")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "train", "recipe.py"), "--smoke", "--out", out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, GC_SHARED=shared))
        check(r.returncode == 0, "recipe --smoke exit status %d:\n%s" % (r.returncode, r.stdout[-3000:]))
        if r.returncode != 0:
            return
        rep = json.load(open(os.path.join(out, "report.json")))
        check(rep["answer_loss_after_sft"] < 0.5 * rep["answer_loss_before_sft"],
              "SFT lowers the answer loss: %.3f -> %.3f" % (rep["answer_loss_before_sft"], rep["answer_loss_after_sft"]))
        check(rep["trl_prompt_matches_scoring_prompt"] is True, "TRL's rendered prompt == scoring prompt")
        check(len(rep["trl_answer_ids"]) >= 2 and rep["trl_answer_ids"][-2:] == rep["prompt_tail_ids"][:2],
              "TRL answer ends with <end_of_turn>\\n: %r" % rep["trl_answer_ids"])
        check(len(set(rep["label_first_ids"])) == 3, "label first tokens distinct: %r" % rep["label_first_ids"])
        check(rep["reload_max_abs_diff"] < 1e-4, "reloaded scores match: %g" % rep["reload_max_abs_diff"])
        mdir = os.path.join(out, "model")
        for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "generation_config.json", "gemmaclf.json"):
            check(os.path.isfile(os.path.join(mdir, f)), "export has %s" % f)
        check_tokenizer(os.path.join(mdir, "tokenizer.json"))
        check_export(mdir, rep)
        check_calibration(out, mdir, rep)
        check_ngram_head(out, mdir, rep)
        check_options(tmp, shared)
    check_calibrate_math()
    check_distillation_loss()
    check_mix_loss()
    check_bias_rules()


def check_options(tmp, shared):
    """A fold run with the measured, off-by-default options: distillation from the cross-fitted
    teacher, training for the mix with the cross-fitted n-gram head, BPE-dropout (examples tokenized
    by the recipe, which TRL must not re-tokenize), a weight soup of two fine-tunes and the squeezed
    comments (comment_norm)."""
    out = os.path.join(tmp, "options")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train", "recipe.py"), "--smoke", "--fold", "0",
                        "--out", out, "--set", "kd_alpha=0.3", "--set", "poe_weight=0.4", "--set", "bpe_dropout=0.1",
                        "--set", "soup=2", "--set", "comment_norm=1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(os.environ, GC_SHARED=shared))
    check(r.returncode == 0, "recipe --smoke --fold 0 with kd_alpha, bpe_dropout: exit %d:\n%s" % (
        r.returncode, r.stdout[-3000:]))
    if r.returncode != 0:
        return
    cv = json.load(open(os.path.join(out, "cv.json")))
    kd = cv.get("distillation", {})
    check(kd.get("alpha") == 0.3 and 0 < kd.get("teacher_accuracy_cross_fitted", 0) <= 1,
          "distillation ran with a cross-fitted teacher: %r" % kd)
    mix = cv.get("training_for_mix", {})
    check(mix.get("weight") == 0.4 and 0 < mix.get("head_accuracy_cross_fitted", 0) <= 1,
          "training for the mix ran with a cross-fitted head: %r" % mix)
    check(cv["trl_prompt_matches_scoring_prompt"] is True, "BPE-dropout run: chat template == scoring prompt")
    from common import LABELS, PROMPT_PREFIX
    vocab = json.load(open(os.path.join(out, "tokenizer", "tokenizer.json")))["model"]["vocab"]
    upper = [t for t in vocab if not t.startswith("<") and any("A" <= c <= "Z" for c in t)]
    template = PROMPT_PREFIX + " ".join(LABELS)
    check(upper and all(t.replace("\u2581", " ").strip() in template for t in upper),
          "comment_norm=1: the tokenizer learned upper case only from the template: %r" % upper[:20])
    check(cv["answer_loss_after_sft"] < 0.5 * cv["answer_loss_before_sft"], "options run lowers the answer loss")
    import torch
    import recipe
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor([3])}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor([5])}
    avg = recipe.average_states([a, b])
    check(torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and torch.equal(avg["n"], torch.tensor([3])),
          "soup average: floats averaged, integer buffers from the first: %r" % avg)


def tiny_gemma(seed):
    """A random 2-layer Gemma 3 (vocabulary 64) and a batch of 3 rows of 12 random ids, for the loss
    checks."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8)
    return Gemma3ForCausalLM(cfg), torch.randint(6, 64, (3, 12))


def check_mix_loss():
    """lean_loss with n-gram head log-probabilities (training for the mix): each first answer token
    adds the cross-entropy of (1 - w) log_softmax(label scores) + w head against its label, computed
    here by hand; a row without an answer adds nothing."""
    import torch
    import torch.nn.functional as F
    import recipe
    model, ids = tiny_gemma(1)
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    starts, first_ids = [7, 5, 6], [10, 11, 12]
    y = [2, 0, 1]  # row r answers label y[r]
    for r, s0 in enumerate(starts):
        ids[r, s0] = first_ids[y[r]]
        labels[r, s0:12] = ids[r, s0:12]
    head = torch.log_softmax(torch.tensor([[0.5, 0.2, -1.0], [2.0, 0.1, 0.0], [-0.3, 0.4, 1.5]]), -1)
    w = 0.4
    with torch.no_grad():
        plain = recipe.lean_loss(model, ids, mask, labels)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    got = recipe.lean_loss(model, ids, mask, labels, first_ids=first_ids, head_first=head, poe_weight=w)
    n = int((labels[:, 1:] != -100).sum())

    def by_hand(rows):
        add = 0.0
        for r in rows:
            lab = F.log_softmax(logits[r, starts[r] - 1][first_ids], -1)
            add -= float(F.log_softmax((1 - w) * lab + w * head[r], -1)[y[r]])
        return add
    want = (float(plain) * n + by_hand(range(3))) / n
    check(abs(got.item() - want) < 1e-4, "mix loss %.6f = by hand %.6f" % (got.item(), want))
    cut = labels.clone()
    cut[1] = -100
    n_cut = int((cut[:, 1:] != -100).sum())
    with torch.no_grad():
        plain_cut = recipe.lean_loss(model, ids, mask, cut)
        mix_cut = recipe.lean_loss(model, ids, mask, cut, first_ids=first_ids, head_first=head, poe_weight=w)
    want_cut = (float(plain_cut) * n_cut + by_hand([0, 2])) / n_cut
    check(abs(float(mix_cut) - want_cut) < 1e-4, "mix loss, a row without answer: %.6f = by hand %.6f" % (
        float(mix_cut), want_cut))
    got.backward()
    check(model.model.embed_tokens.weight.grad is not None, "mix loss has gradients")


def check_bias_rules():
    """choose(): "grid" undoes a known shift of the Extreme Hate scores, "zero" leaves the scores as
    they are and still reports what the grid would have chosen."""
    import numpy as np
    import recipe
    rng = np.random.default_rng(1)
    y = rng.choice(3, size=3000, p=[0.7, 0.2, 0.1])
    s = rng.normal(0, 1, size=(3000, 3)) + 3.0 * np.eye(3)[y]
    s[:, 2] -= 1.5  # Extreme Hate under-scored by 1.5
    g = recipe.choose(s, y.tolist(), "grid")
    z = recipe.choose(s, y.tolist(), "zero")
    check(1.0 <= g["bias"][2] <= 2.0 and abs(g["bias"][1]) <= 0.5, "grid rule undoes the shift: %r" % g["bias"])
    check(z["bias"] == [0.0, 0.0, 0.0] and z["grid_bias"] == g["bias"] and z["rule"] == "zero",
          "zero rule: no bias, grid choice reported: %r, %r" % (z["bias"], z["grid_bias"]))


def check_distillation_loss():
    """lean_loss with soft first-token targets: one-hot targets give the plain loss; other targets
    change only the first answer token's term, by the amount computed here by hand."""
    import torch
    import torch.nn.functional as F
    import recipe
    model, ids = tiny_gemma(0)
    mask = torch.ones_like(ids)
    mask[2, 10:] = 0
    labels = torch.full_like(ids, -100)
    starts = [7, 5, 6]  # first answer token of each row
    first_ids = [10, 11, 12]
    for r, s0 in enumerate(starts):
        ids[r, s0] = first_ids[r]
        labels[r, s0:(10 if r == 2 else 12)] = ids[r, s0:(10 if r == 2 else 12)]
    with torch.no_grad():
        plain = recipe.lean_loss(model, ids, mask, labels)
        same = recipe.lean_loss(model, ids, mask, labels, soft_first=torch.eye(3), first_ids=first_ids)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    check(abs(float(plain) - float(same)) < 1e-5, "one-hot soft targets = plain loss: %g vs %g" % (plain, same))
    soft = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    got = recipe.lean_loss(model, ids, mask, labels, soft_first=soft, first_ids=first_ids)
    n = int((labels[:, 1:] != -100).sum())
    want = float(plain) * n
    for r, s0 in enumerate(starts):
        lp = F.log_softmax(logits[r, s0 - 1], -1)
        want += float(lp[first_ids[r]]) - float((soft[r] * lp[first_ids]).sum())
    want /= n
    check(abs(got.item() - want) < 1e-4, "soft-target loss %.6f = by hand %.6f" % (got.item(), want))
    # a row whose answer the length cut dropped has no first answer token: its target is skipped
    cut = labels.clone()
    cut[1] = -100
    with torch.no_grad():
        plain_cut = recipe.lean_loss(model, ids, mask, cut)
        soft_cut = recipe.lean_loss(model, ids, mask, cut, soft_first=torch.eye(3), first_ids=first_ids)
    check(abs(float(plain_cut) - float(soft_cut)) < 1e-5, "row without answer: %g vs %g" % (plain_cut, soft_cut))
    got.backward()
    check(model.model.embed_tokens.weight.grad is not None, "soft-target loss has gradients")


def check_calibration(out, mdir, rep):
    """The recipe's CV + calibration path: fold run, candidates, temperature exported."""
    cv = json.load(open(os.path.join(out, "fold0", "cv.json")))
    specs = rep["config"]["variants"].split("|")
    check(sorted(cv["candidates"]) == sorted(specs), "fold 0 scored every candidate: %r" % sorted(cv["candidates"]))
    check(cv["n_val"] > 0 and cv["n_train_distinct"] > cv["n_val"], "fold sizes: %d train, %d val" % (
        cv["n_train_distinct"], cv["n_val"]))
    check(rep["variant"] in specs, "chosen candidate is one of the candidates: %r" % rep["variant"])
    gc = json.load(open(os.path.join(mdir, "gemmaclf.json")))
    t = gc.get("temperature")
    check(isinstance(t, (int, float)) and 0 < t < 100, "gemmaclf.json temperature: %r" % t)
    check(abs(t - rep["temperature"]) < 1e-3, "exported temperature = chosen one")
    check([gc["score_bias"][k] for k in ("Not Hate", "Hate", "Extreme Hate")] == rep["bias"],
          "exported bias = chosen one")
    e = rep["dev_distinct_calibration"]["ece"]
    check(0 <= e <= 1, "dev ECE in [0, 1]: %r" % e)
    check(os.path.isfile(os.path.join(out, "reliability.png")), "reliability plot written")


def check_ngram_head(out, mdir, rep):
    """The n-gram head: fold scores saved, weight chosen from the grid and exported with the head file,
    the byte features by hand, and what bin/gemmaclf serves = the Python rule (transformers + head)."""
    import numpy as np
    import ngram_head
    from common import distinct, load_split, squeeze_comment
    npz = np.load(os.path.join(out, "fold0", "val_scores.npz"))
    lp = npz["ngram_head"] if "ngram_head" in npz.files else None
    check(lp is not None and lp.shape == (len(npz["y"]), 3) and np.allclose(np.exp(lp).sum(1), 1),
          "fold run saved the head's log-probabilities")
    gc = json.load(open(os.path.join(mdir, "gemmaclf.json")))
    check(gc.get("ngram_weight") == rep["ngram_weight"] and rep["ngram_weight"] in ngram_head.WEIGHTS,
          "exported ngram_weight %r = chosen %r" % (gc.get("ngram_weight"), rep["ngram_weight"]))
    head = ngram_head.load(os.path.join(mdir, "ngram_head.safetensors"))
    check(head["idf_chars"].shape == (1 << rep["config"]["ngram_bits"],) and head["weight"].shape == (3, 2 << rep["config"]["ngram_bits"]),
          "head file shapes: %r" % {k: v.shape for k, v in head.items()})
    chars, words = ngram_head.ngrams("Ab c\tAB_9")
    want_chars = [b"c" + g for g in (b" a", b"ab", b"b ", b" ab", b"ab ", b" ab ", b" c", b"c ", b" c ",
                                     b" a", b"ab", b"b_", b"_9", b"9 ", b" ab", b"ab_", b"b_9", b"_9 ",
                                     b" ab_", b"ab_9", b"b_9 ", b" ab_9", b"ab_9 ")]
    check(sorted(chars) == sorted(want_chars) and words == [b"wab", b"wab_9", b"wab ab_9"],
          "byte n-grams by hand: %r %r" % (chars, words))
    gc_bin = os.path.join(ROOT, "bin", "gemmaclf")
    check(os.access(gc_bin, os.X_OK), "%s built (the served-scores check needs it)" % gc_bin)
    if not os.access(gc_bin, os.X_OK):
        return
    texts = [r["text"] for r in distinct(load_split("dev"))[:40]] + ["MAAR DO", "x" * 5000,
                                                                     "MAAAAR DOOO!!!! \U0001f621\U0001f621\U0001f621",
                                                                     "\u00c4\u00c4\u00c4 aAaA", "a\n\n\n\nb"]
    # gemmaclf.json "comment_norm" (the export names it when the recipe's comment_norm is on): the
    # engine reads each comment as common.squeeze_comment rewrites it, for the model and the head;
    # then the same with the other setting, in a copy of the model
    sq = os.path.join(os.path.dirname(mdir), "model-other-norm")
    os.makedirs(sq)
    for f in os.listdir(mdir):
        if f != "gemmaclf.json":
            os.symlink(os.path.join(mdir, f), os.path.join(sq, f))
    other = dict(gc, comment_norm=None if gc.get("comment_norm") else "squeeze")
    json.dump(other, open(os.path.join(sq, "gemmaclf.json"), "w"))
    check(gc.get("comment_norm") == ("squeeze" if rep["config"]["comment_norm"] else None),
          "exported comment_norm %r for the recipe's comment_norm=%r" % (gc.get("comment_norm"), rep["config"]["comment_norm"]))
    for d, g in ((mdir, gc), (sq, other)):
        seen = [squeeze_comment(t) for t in texts] if g.get("comment_norm") else texts
        dp, err = served_vs_python(gc_bin, d, g, head, texts, seen)
        check(dp < 1e-4, "bin/gemmaclf serves the recipe's rule (model + head, bias, T), comment_norm %r: "
              "max |dp| %.2e (%s)" % (g.get("comment_norm"), dp, err))


def served_vs_python(gc_bin, mdir, gc, head, texts, seen):
    """Largest |p(bin/gemmaclf classify mdir, texts) - p(transformers + head on seen)| (1 when the
    binary fails), and the end of its stderr."""
    import numpy as np
    import ngram_head
    import torch
    from transformers import Gemma3ForCausalLM
    from common import LABELS
    from scoring import PromptEncoder, label_logprobs
    model = Gemma3ForCausalLM.from_pretrained(mdir, dtype=torch.float32).eval()
    s = label_logprobs(model, PromptEncoder(os.path.join(mdir, "tokenizer.json")), seen,
                       max_tokens=512).numpy()
    s = ngram_head.combine(s, ngram_head.log_probs(head, seen), gc["ngram_weight"])
    s = (s + np.array([gc["score_bias"][k] for k in LABELS])) / gc["temperature"]
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    r = subprocess.run([gc_bin, "classify", mdir], input="".join(json.dumps(t) + "\n" for t in texts),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    ok = r.returncode == 0 and len(got) == len(p)
    dp = max(abs(g["scores"][k] - p[i, j]) for i, g in enumerate(got) for j, k in enumerate(LABELS)) if ok else 1
    return dp, r.stderr[-300:]


def check_calibrate_math():
    """fit_temperature recovers the temperature that generated the labels; ECE of calibrated
    probabilities is small and of over-confident ones large."""
    import numpy as np
    import calibrate
    rng = np.random.default_rng(0)
    s = rng.normal(0, 3, size=(20000, 3))
    p_true = calibrate.probs(s, [0, 0, 0], 2.5)
    y = np.array([rng.choice(3, p=p) for p in p_true])
    t = calibrate.fit_temperature(s, y, [0, 0, 0])
    check(abs(t - 2.5) < 0.15, "fitted temperature %.3f ~ 2.5" % t)
    e_cal = calibrate.ece(calibrate.probs(s, [0, 0, 0], t), y)[0]
    e_raw = calibrate.ece(calibrate.probs(s, [0, 0, 0], 1.0), y)[0]
    check(e_cal < 0.02 and e_raw > 0.05, "ECE calibrated %.4f < 0.02, over-confident %.4f > 0.05" % (e_cal, e_raw))
    b, tj = calibrate.fit_bias_temperature(s + np.array([0, -1.0, 0.5]), y)
    check(abs(b[1] - 1.0) < 0.2 and abs(b[2] + 0.5) < 0.2 and abs(tj - 2.5) < 0.3,
          "joint fit undoes a known shift: bias %r, T %.3f" % (b, tj))


def check_tokenizer(path):
    tj = json.load(open(path, encoding="utf-8"))
    specials = {t["content"]: t["id"] for t in tj["added_tokens"]}
    check(specials == {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 4, "<end_of_turn>": 5},
          "Gemma special token ids: %r" % specials)
    check(tj["normalizer"] == {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}, "normalizer")
    check(tj["pre_tokenizer"]["type"] == "Split", "pre-tokenizer Split")
    check(tj["model"]["type"] == "BPE" and tj["model"]["byte_fallback"] is True, "BPE with byte fallback")
    v = tj["model"]["vocab"]
    check(all(v.get("<0x%02X>" % b) == 6 + b for b in range(256)), "byte tokens <0x00>..<0xFF> = 6..261")
    allowed = {"Replace", "ByteFallback", "Fuse", "Strip"}
    check(all(d["type"] in allowed for d in tj["decoder"]["decoders"]), "decoders supported by the C tokenizer")
    check(tj["post_processor"]["type"] == "TemplateProcessing", "TemplateProcessing post-processor")
    # every merge stays inside a word, so the prompt prefix's ids never depend on the comment
    check(all(not m[1].startswith("\u2581") for m in tj["model"]["merges"]), "no merge crosses a word boundary")


def check_export(mdir, rep):
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM
    from common import LABELS, PROMPT_PREFIX, load_split
    from scoring import PromptEncoder, label_logprobs
    model = Gemma3ForCausalLM.from_pretrained(mdir, dtype=torch.float32)
    check(type(model).__name__ == "Gemma3ForCausalLM", "loads as Gemma3ForCausalLM")
    check(all(p.dtype == torch.float32 for p in model.parameters()), "F32 weights")
    gc = json.load(open(os.path.join(mdir, "gemmaclf.json")))
    check(gc["labels"] == LABELS and gc["prompt_prefix"] == PROMPT_PREFIX and
          set(gc["score_bias"]) == set(LABELS), "gemmaclf.json format: %r" % gc)
    enc = PromptEncoder(os.path.join(mdir, "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(mdir)
    dev = load_split("dev")[:40]
    same = 0
    for r in dev:
        ids = tok.apply_chat_template([{"role": "user", "content": PROMPT_PREFIX + r["text"]}],
                                      add_generation_prompt=True, tokenize=True, return_dict=False)
        same += list(ids) == enc.prompt_ids(r["text"])
    check(same == len(dev), "chat template prompt ids == scoring prompt ids (%d/%d)" % (same, len(dev)))
    s = label_logprobs(model, enc, [r["text"] for r in dev[:8]], batch_size=4)
    s1 = torch.cat([label_logprobs(model, enc, [r["text"]]) for r in dev[:8]])
    check(torch.allclose(s, s1, atol=1e-4), "batched (right-padded) scores == one-at-a-time scores")
    check(bool(torch.isfinite(s).all()), "finite scores")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash must count as a failure
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    TALLY.finish()
