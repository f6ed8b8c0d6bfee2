"""gemmaclf training recipe: tokenizer -> LM phase -> SFT (TRL) -> bias on dev -> evaluation -> export.

    train/run.sh [--smoke] [--out DIR]
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import LABELS, PROMPT_PREFIX, HERE, distinct, fix_special_ids, load_split  # noqa: E402

FULL = dict(
    vocab_size=4096, hidden_size=256, num_hidden_layers=4, intermediate_size=512, num_attention_heads=4,
    num_key_value_heads=1, head_dim=64, sliding_window=512,
    lm_epochs=2, lm_lr=1e-3, sft_epochs=3, sft_lr=1e-3, batch_size=32,
    # per SFT epoch: every Not Hate and Hate comment once, every Extreme Hate comment 3 times
    # (not_hate_fraction < 1 keeps only that share of Not Hate per epoch, alternating parts: the
    # first full run used 0.5 and reached distinct-dev macro-F1 0.80; with 1.0 0.83; see train/runs.md)
    extreme_oversample=3, not_hate_fraction=1.0, max_comment_chars=400, n_train=None, n_dev=None,
)
SMOKE = dict(FULL, vocab_size=1024, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
             num_attention_heads=2, head_dim=32, lm_epochs=1, lm_lr=3e-3, sft_epochs=3, sft_lr=3e-3,
             batch_size=16, n_train=400, n_dev=120)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def subsample(rows, n, seed):
    """Stratified-ish subsample for the smoke run: keep every class represented."""
    if n is None or n >= len(rows):
        return rows
    rng = random.Random(seed)
    by = {lab: [r for r in rows if r["label"] == lab] for lab in LABELS}
    out = []
    for lab, share in zip(LABELS, (0.6, 0.25, 0.15)):
        out += rng.sample(by[lab], min(len(by[lab]), int(n * share)))
    rng.shuffle(out)
    return out


def make_hf_tokenizer(tok_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tok_dir)
    # transformers must use our tokenizer.json unchanged
    from tokenizers import Tokenizer
    raw = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    probe = "<bos><start_of_turn>user\n" + PROMPT_PREFIX + "Tum   log 😂😂 तुम @x_y<end_of_turn>\n"
    assert tok(probe, add_special_tokens=False)["input_ids"] == raw.encode(probe, add_special_tokens=False).ids
    return tok


def model_config(cfg, tok):
    from transformers import Gemma3TextConfig
    L = cfg["num_hidden_layers"]
    c = Gemma3TextConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=L, num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"],
        query_pre_attn_scalar=cfg["head_dim"], sliding_window=cfg["sliding_window"],
        layer_types=["sliding_attention"] * (L - 1) + ["full_attention"],
        max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=True,
        pad_token_id=tok.convert_tokens_to_ids("<pad>"), bos_token_id=tok.convert_tokens_to_ids("<bos>"),
        eos_token_id=tok.convert_tokens_to_ids("<eos>"),
    )
    return c


def lean_loss(model, input_ids, attention_mask, labels, shared_prefix=None):
    """Mean cross-entropy of the unmasked labels (labels != -100), the output head applied only at
    the positions that predict them.  With shared_prefix (ids every row starts with, e.g. the
    15-id chat prompt head) the prefix is run once and its keys/values broadcast to the batch -- the
    same prefix-cache trick gemmaclf uses at inference; gradients flow through the shared cache."""
    import torch.nn.functional as F
    B, T = input_ids.shape
    P = len(shared_prefix) if shared_prefix is not None else 0
    if P and not bool((input_ids[:, :P] == torch.tensor(shared_prefix)).all()):
        P = 0  # a row does not start with the prefix: no sharing for this batch
    if P and (labels[:, :P + 1] != -100).any():
        P = 0
    if P:
        head = model.model(input_ids=input_ids[:1, :P], use_cache=True)
        cache = head.past_key_values
        for layer in cache.layers:
            layer.keys = layer.keys.expand(B, -1, -1, -1)
            layer.values = layer.values.expand(B, -1, -1, -1)
        pos = torch.arange(P, T).unsqueeze(0).expand(B, -1)
        hidden = model.model(input_ids=input_ids[:, P:], attention_mask=attention_mask, past_key_values=cache,
                             position_ids=pos, use_cache=True).last_hidden_state[:, :-1]
    else:
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask,
                             use_cache=False).last_hidden_state[:, :-1]
    target = labels[:, P + 1:]
    sel = target != -100
    logits = model.lm_head(hidden[sel])
    cap = model.config.final_logit_softcapping
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits.float(), target[sel], reduction="mean")


def lean_trainer_class():
    """SFTTrainer whose loss applies the output head only where the loss needs it.

    Same data pipeline, masking (TRL's completion_mask -> labels -100) and loss (mean token
    cross-entropy over the unmasked labels) as SFTTrainer; it only skips the full-vocabulary
    logits of prompt positions and TRL's logging extras (entropy, token accuracy), about a third of
    the CPU time of this small model."""
    import torch.nn.functional as F
    from trl import SFTTrainer

    class LeanSFTTrainer(SFTTrainer):
        shared_prefix = None  # token ids every example starts with (the chat prompt's head)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = lean_loss(model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"],
                             self.shared_prefix)
            return (loss, None) if return_outputs else loss

    return LeanSFTTrainer


def sft_args(out_dir, cfg, epochs, lr, seed, smoke):
    from trl import SFTConfig
    return SFTConfig(
        output_dir=out_dir, num_train_epochs=epochs, per_device_train_batch_size=cfg["batch_size"],
        learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.01,
        adam_beta2=0.98, max_grad_norm=1.0, logging_steps=5 if smoke else 50, save_strategy="no",
        report_to="none", seed=seed, data_seed=seed, use_cpu=True, dataloader_num_workers=0,
        dataloader_pin_memory=False, train_sampling_strategy="group_by_length", max_length=512,
        bf16=False, fp16=False, disable_tqdm=True, packing=False,
        gradient_checkpointing=False,  # TRL's default (True) recomputes activations: pure cost here
    )


def sft_epochs(train_d, cfg, seed):
    """The SFT examples of all epochs (chat prompt-completion form)."""
    rng = random.Random(seed)
    nh = [r for r in train_d if r["label"] == "Not Hate"]
    rest = [r for r in train_d if r["label"] != "Not Hate"]
    rng.shuffle(nh)
    k = max(1, round(len(nh) * cfg["not_hate_fraction"]))
    rows = []
    for e in range(cfg["sft_epochs"]):
        start = (e * k) % len(nh)
        part = (nh + nh)[start:start + k]
        for r in part + rest:
            n = cfg["extreme_oversample"] if r["label"] == "Extreme Hate" else 1
            for _ in range(n):
                text = r["text"].strip()[: cfg["max_comment_chars"]]
                rows.append({"prompt": [{"role": "user", "content": PROMPT_PREFIX + text}],
                             "completion": [{"role": "assistant", "content": r["label"]}]})
    return rows


@torch.no_grad()
def completion_loss(model, enc, rows):
    """Mean answer-token cross-entropy (the SFT loss) over rows, for the smoke check."""
    model.eval()
    tot, n = 0.0, 0
    for r in rows:
        p = enc.prompt_ids(r["text"])
        a = enc.label_ids[LABELS.index(r["label"])]
        ids = torch.tensor([p + a])
        logits = model(input_ids=ids).logits[0].float()
        lp = torch.log_softmax(logits[len(p) - 1:-1], -1)
        tot += -lp[torch.arange(len(a)), torch.tensor(a)].sum().item()
        n += len(a)
    model.train()
    return tot / n


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tokenizer", default=None,
                    help="reuse this tokenizer.json instead of training one (HF's BPE trainer breaks ties "
                         "between equally frequent pairs in hash order, so fresh tokenizers differ slightly)")
    # 1 thread: on the shared 2-core machine, 2 OpenMP threads ran 7x SLOWER than 1 under load
    # (measured 220 vs 1,524 tokens/s for a training step); use --threads 2 on an idle machine
    ap.add_argument("--reuse-lm", action="store_true",
                    help="start SFT from OUT/lm_model (saved by an earlier run's LM phase) instead of redoing it")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe setting, e.g. --set lm_epochs=2 --set not_hate_fraction=1.0")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("GC_TRAIN_THREADS", "1")))
    args = ap.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else FULL)
    for kv in args.set:
        k, v = kv.split("=", 1)
        if k not in cfg:
            ap.error("unknown setting %s" % k)
        cfg[k] = type(cfg[k])(v) if cfg[k] is not None else int(v)
    out = os.path.abspath(args.out or os.path.join(HERE, "out", "smoke" if args.smoke else "full"))
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    timings = {}
    t_all = time.time()

    from datasets import Dataset
    from transformers import Gemma3ForCausalLM
    Trainer = lean_trainer_class()
    import tokenizer_train
    from scoring import PromptEncoder, label_logprobs
    import evaluate as ev

    train_rows = load_split("train")
    dev_rows = load_split("dev")
    train_d = subsample(distinct(train_rows), cfg["n_train"], args.seed)
    dev_rows = subsample(dev_rows, cfg["n_dev"], args.seed)
    log("train: %d rows, %d distinct used; dev: %d rows" % (len(train_rows), len(train_d), len(dev_rows)))

    # 1. tokenizer (on the training comments only)
    t = time.time()
    tok_dir = os.path.join(out, "tokenizer")
    tok_rows = train_rows if not args.smoke else train_d
    if args.reuse_lm:  # the LM-phase model was trained with the tokenizer already in OUT/tokenizer
        nvocab = tokenizer_train.copy_tokenizer(os.path.join(tok_dir, "tokenizer.json"), tok_dir)
    elif args.tokenizer:
        nvocab = tokenizer_train.copy_tokenizer(args.tokenizer, tok_dir)
    else:
        _, nvocab = tokenizer_train.train_tokenizer(tok_rows, cfg["vocab_size"], tok_dir)
    tok = make_hf_tokenizer(tok_dir)
    enc = PromptEncoder(os.path.join(tok_dir, "tokenizer.json"))
    timings["tokenizer_s"] = time.time() - t
    log("tokenizer: %d tokens, label first ids %s, prompt head %d ids" % (nvocab, enc.first_ids, len(enc.head)))

    # 2. model from scratch
    seed_all(args.seed)
    mcfg = model_config(cfg, tok)
    model = Gemma3ForCausalLM(mcfg)
    model.config._attn_implementation = "sdpa"
    nparams = sum(p.numel() for p in model.parameters())
    log("model: %.2fM parameters" % (nparams / 1e6))

    def clip(text):
        return text.strip()[: cfg["max_comment_chars"]]

    # 3. LM phase on the (distinct) training comments, as they appear after the prompt prefix (" " + text)
    t = time.time()
    lm_dir = os.path.join(out, "lm_model")
    if args.reuse_lm:
        model = Gemma3ForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)
        model.config._attn_implementation = "sdpa"
        with open(os.path.join(lm_dir, "lm_phase.json")) as f:
            lm_info = json.load(f)
        log("LM phase reused from %s" % lm_dir)
    else:
        lm_ds = Dataset.from_list([{"text": " " + clip(r["text"])} for r in train_d]).shuffle(seed=args.seed)
        lm_args = sft_args(os.path.join(out, "lm"), cfg, cfg["lm_epochs"], cfg["lm_lr"], args.seed, args.smoke)
        lm_args.eos_token = "<eos>"
        trainer = Trainer(model=model, args=lm_args, train_dataset=lm_ds, processing_class=tok)
        lm_res = trainer.train()
        lm_info = {"loss": lm_res.training_loss, "seconds": time.time() - t}
        model.save_pretrained(lm_dir)
        with open(os.path.join(lm_dir, "lm_phase.json"), "w") as f:
            json.dump(lm_info, f)
    timings["lm_phase_s"] = lm_info["seconds"]
    log("LM phase: loss %.4f in %.0f s" % (lm_info["loss"], timings["lm_phase_s"]))

    # 4. SFT in the chat format, loss on the answer only; Extreme Hate oversampled
    probe = [r for r in train_d[:200]]
    loss_before = completion_loss(model, enc, probe)
    t = time.time()
    sft_rows = sft_epochs(train_d, cfg, args.seed)
    sft_counts = {lab: sum(1 for r in sft_rows if r["completion"][0]["content"] == lab) for lab in LABELS}
    log("SFT examples over all epochs: %d %s" % (len(sft_rows), sft_counts))
    sft_ds = Dataset.from_list(sft_rows).shuffle(seed=args.seed)
    # the epochs are materialised in sft_rows (different Not Hate halves), so one pass over it
    s_args = sft_args(os.path.join(out, "sft"), cfg, 1, cfg["sft_lr"], args.seed, args.smoke)
    s_args.completion_only_loss = True
    trainer = Trainer(model=model, args=s_args, train_dataset=sft_ds, processing_class=tok)
    trainer.shared_prefix = enc.head
    # the rendered training example must be the prompt gemmaclf scores, followed by the answer
    ex = trainer.train_dataset[0]
    ex_comment = sft_ds[0]["prompt"][0]["content"][len(PROMPT_PREFIX):]
    sft_res = trainer.train()
    timings["sft_phase_s"] = time.time() - t
    loss_after = completion_loss(model, enc, probe)
    log("SFT: loss %.4f in %.0f s; answer loss on 200 train comments %.4f -> %.4f" % (
        sft_res.training_loss, timings["sft_phase_s"], loss_before, loss_after))
    ids = ex["input_ids"]
    n_prompt = ex["completion_mask"].index(1)
    check_ids = ids[:n_prompt]

    # 5. scoring on dev, bias choice, evaluation
    t = time.time()
    model.eval()
    dev_dist = distinct(dev_rows)
    s_rows = label_logprobs(model, enc, [r["text"] for r in dev_rows]).numpy()
    s_dist = label_logprobs(model, enc, [r["text"] for r in dev_dist]).numpy()
    y_rows = [LABELS.index(r["label"]) for r in dev_rows]
    y_dist = [LABELS.index(r["label"]) for r in dev_dist]
    choice = ev.choose_bias(s_dist, y_dist)
    bias = [0.0, choice["Hate"], choice["Extreme Hate"]]
    p_rows = np.argmax(s_rows + np.array(bias), 1).tolist()
    p_dist = np.argmax(s_dist + np.array(bias), 1).tolist()
    p0_dist = np.argmax(s_dist, 1).tolist()
    m_rows, m_dist, m0_dist = ev.metrics(y_rows, p_rows), ev.metrics(y_dist, p_dist), ev.metrics(y_dist, p0_dist)
    m0_rows = ev.metrics(y_rows, np.argmax(s_rows, 1).tolist())
    timings["eval_s"] = time.time() - t

    # 6. export
    mdir = os.path.join(out, "model")
    if os.path.isdir(mdir):
        shutil.rmtree(mdir)
    model.config.use_cache = True
    model.to(torch.float32).save_pretrained(mdir, safe_serialization=True)
    model.generation_config.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    for f in ("tokenizer.json", "tokenizer_config.json"):  # keep our exact files
        shutil.copy(os.path.join(tok_dir, f), os.path.join(mdir, f))
    for f in os.listdir(mdir):
        if f not in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                     "tokenizer_config.json"):
            os.remove(os.path.join(mdir, f))
    fix_special_ids(mdir)
    gc = {"labels": LABELS, "prompt_prefix": PROMPT_PREFIX,
          "score_bias": {"Not Hate": 0.0, "Hate": bias[1], "Extreme Hate": bias[2]}}
    with open(os.path.join(mdir, "gemmaclf.json"), "w", encoding="utf-8") as f:
        json.dump(gc, f, indent=1)
        f.write("\n")
    timings["total_s"] = time.time() - t_all

    # reload check: the export loads and reproduces the scores
    reloaded = Gemma3ForCausalLM.from_pretrained(mdir, dtype=torch.float32)
    s_re = label_logprobs(reloaded, enc, [r["text"] for r in dev_dist[:32]]).numpy()
    reload_diff = float(np.abs(s_re - s_dist[:32]).max())

    ev.plot_confusions(m_rows, m_dist, os.path.join(out, "confusion_dev.png"))
    report = {
        "config": cfg, "sft_examples": sft_counts, "seed": args.seed, "smoke": args.smoke, "params": nparams, "vocab": nvocab,
        "timings_s": timings, "lm_loss": lm_info["loss"], "lm_reused": args.reuse_lm, "sft_loss": sft_res.training_loss,
        "answer_loss_before_sft": loss_before, "answer_loss_after_sft": loss_after,
        "label_first_ids": enc.first_ids, "prompt_head_ids": enc.head, "prompt_tail_ids": enc.tail,
        "trl_prompt_matches_scoring_prompt": check_ids == enc.prompt_ids(ex_comment),
        "trl_answer_ids": ids[n_prompt:],
        "reload_max_abs_diff": reload_diff, "bias_choice": {k: v for k, v in choice.items()
                                                           if k not in ("grid", "macro_f1")},
        "dev_rows": m_rows, "dev_distinct": m_dist, "dev_distinct_zero_bias": m0_dist, "dev_rows_zero_bias": m0_rows,
        "torch_threads": torch.get_num_threads(),
    }
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out, "bias_grid.json"), "w") as f:
        json.dump({"grid": choice["grid"], "macro_f1_distinct_dev": choice["macro_f1"]}, f)
    md = [ev.fmt_table(m_rows, "dev, all rows"), ev.fmt_table(m_dist, "dev, distinct comments"),
          ev.fmt_table(m0_dist, "dev, distinct comments, zero bias")]
    with open(os.path.join(out, "eval.md"), "w") as f:
        f.write("\n".join(md))
    log("dev distinct: macro-F1 %.4f, Extreme Hate F1 %.4f (bias %s; zero bias macro-F1 %.4f EH F1 %.4f); "
        "rows macro-F1 %.4f" % (m_dist["macro"]["f1"], m_dist["per_class"]["Extreme Hate"]["f1"], bias,
                                m0_dist["macro"]["f1"], m0_dist["per_class"]["Extreme Hate"]["f1"],
                                m_rows["macro"]["f1"]))
    log("timings %s" % json.dumps({k: round(v, 1) for k, v in timings.items()}))
    log("exported %s (reload max |diff| %.2e)" % (mdir, reload_diff))
    return report


if __name__ == "__main__":
    main()
