"""gemmaclf training recipe: validation fold(s) cut from train -> bias, temperature and weight-averaging
choice on them -> the final model on all of train -> evaluation on dev -> export.

    train/run.sh [--smoke] [--out DIR]                 # the whole recipe (CV fold(s), then the final model)
    train/run.sh --fold 1 --out DIR/fold1              # one validation fold only
    train/run.sh --calib DIR/fold0,DIR/fold1 --out DIR # the final model, calibrated on those folds

Each training (fold or final) is: tokenizer -> LM phase -> SFT (TRL) with weight snapshots.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (LABELS, PROMPT_PREFIX, HERE, cv_fold_of, distinct, fix_special_ids,  # noqa: E402
                    fold_split, load_split, norm_text, squeeze_comment)

FULL = dict(
    vocab_size=4096, hidden_size=256, num_hidden_layers=3, intermediate_size=512, num_attention_heads=4,
    num_key_value_heads=1, head_dim=64, sliding_window=512,
    # 4 LM epochs (not 1) with the regularization below: +0.03 macro-F1 of the Gemma model alone on
    # validation folds 0 and 1; 8 epochs added nothing on fold 0 (train/runs.md, "A longer,
    # regularized LM phase")
    lm_epochs=4, lm_lr=1e-3, sft_epochs=3, sft_lr=1e-3, batch_size=32,
    # per SFT epoch: every Not Hate and Hate comment once, every Extreme Hate comment twice: 2x
    # served better than 3x on the four paired folds it was chosen on (0, 1, 3, 4) and worse on the
    # fifth (2): over five folds +0.008 macro-F1, +0.020 Extreme Hate F1 (5x was lower on fold 0);
    # see train/runs.md, "Five folds of the recipe"
    # (not_hate_fraction < 1 keeps only that share of Not Hate per epoch, alternating parts: the
    # first full run used 0.5 and reached distinct-dev macro-F1 0.80; with 1.0 0.83; see train/runs.md)
    extreme_oversample=2, not_hate_fraction=1.0, max_comment_chars=400, n_train=None, n_dev=None,
    label_smoothing=0.0,
    # regularization of both phases: AdamW weight decay, and dropout of the attention probabilities
    weight_decay=0.1, attention_dropout=0.1,
    # distillation: the first answer token's target is (1 - kd_alpha) * the label + kd_alpha * the
    # teacher's probabilities (train/teacher.py, cross-fitted over kd_parts parts of the training comments)
    kd_alpha=0.0, kd_parts=5,
    # training for the mix (a product of experts): the first answer token is also scored as gemmaclf
    # serves it, (1 - poe_weight) log_softmax(label scores) + poe_weight * the n-gram head's
    # log-probabilities (cross-fitted over poe_parts parts of the training comments), against the
    # label, so that the Gemma model learns most from what the head gets wrong; 0 = off
    poe_weight=0.0, poe_parts=5,
    # BPE-dropout of the comments in the SFT examples (scoring.BPEDropout); 0 = the deterministic encoding
    bpe_dropout=0.0,
    # comment normalization (common.squeeze_comment: A-Z lower-cased, runs of one character cut to 2),
    # applied to every comment before tokenizer training, the LM phase, SFT, the n-gram head and
    # scoring; exported as gemmaclf.json's "comment_norm" so that the engine applies it too; 0 = off.
    # On: the served model +0.03 macro-F1 / +0.05 Extreme Hate F1 on validation folds (train/runs.md,
    # "Comments lower-cased and squeezed")
    comment_norm=1,
    # score bias: "zero" (none) or "grid" (the F1-optimal bias on the validation fold(s)); see choose()
    bias_rule="zero",
    # weight soup: soup > 1 fine-tunes the LM-phase model that many times (seeds seed, seed+1, ...) and
    # averages the weights of the runs at every snapshot (Wortsman et al. 2022, "Model soups")
    soup=1,
    # cross-validation: folds of the distinct training comments (grouped by normalized text, stratified
    # by label); cv_folds = the folds the recipe holds out in turn ("0": one 20% validation fold)
    n_folds=5, cv_folds="0,1",
    # weight averaging: candidate models built from SFT snapshots taken at these epoch positions;
    # each candidate is a "+"-joined list of positions whose weights are averaged ("3" = the last)
    variants="3|2|2+3|2+2.5+3",
    # n-gram head served next to the Gemma model (train/ngram_head.py): 1 = fitted in every fold run and
    # on all of train, its weight chosen on the validation fold(s); 0 = none. ngram_bits: log2 buckets
    ngram_head=1, ngram_bits=17,
)
SMOKE = dict(FULL, vocab_size=1024, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
             num_attention_heads=2, head_dim=32, lm_epochs=1, lm_lr=3e-3, sft_epochs=3, sft_lr=3e-3,
             batch_size=16, n_train=400, n_dev=120, n_folds=4, ngram_bits=10)


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
        eos_token_id=tok.convert_tokens_to_ids("<eos>"), attention_dropout=cfg["attention_dropout"],
    )
    return c


def lean_loss(model, input_ids, attention_mask, labels, shared_prefix=None, label_smoothing=0.0,
              soft_first=None, first_ids=None, head_first=None, poe_weight=0.0):
    """Mean cross-entropy of the unmasked labels (labels != -100), the output head applied only at
    the positions that predict them. With soft_first ([B, 3] target distributions over the labels'
    first tokens first_ids), each row's first answer token is scored against that distribution
    instead of its label (distillation); the other answer tokens keep their labels. With head_first
    ([B, 3] n-gram head log-probabilities), each first answer token adds the cross-entropy of the
    served mix (1 - poe_weight) log_softmax(label scores) + poe_weight head_first against its label
    (training for the mix). With
    shared_prefix (ids every row starts with, e.g. the 15-id chat prompt head) the prefix is run
    once and its keys/values broadcast to the batch -- the same prefix-cache trick gemmaclf uses at
    inference; gradients flow through the shared cache."""
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
    if soft_first is None and head_first is None:
        return F.cross_entropy(logits.float(), target[sel], reduction="mean", label_smoothing=label_smoothing)
    tok_loss = F.cross_entropy(logits.float(), target[sel], reduction="none", label_smoothing=label_smoothing)
    # hidden[sel] is row-major, so the k-th first answer token belongs to the k-th row that has an
    # answer (the max_length cut can drop the answer of a very long comment)
    first = (sel & (sel.cumsum(1) == 1))[sel]
    answered = sel.any(1)
    lp = torch.log_softmax(logits[first].float(), -1)[:, first_ids]
    if soft_first is not None:
        soft = soft_first[answered].to(lp.dtype)
        tok_loss = tok_loss.masked_scatter(first, -(soft * lp).sum(1))
    if head_first is not None:
        y = (target[sel][first].unsqueeze(1) == torch.tensor(first_ids)).float().argmax(1)
        mix = (1 - poe_weight) * torch.log_softmax(lp, -1) + poe_weight * head_first[answered].to(lp.dtype)
        tok_loss = tok_loss.masked_scatter(first, tok_loss[first] + F.cross_entropy(mix, y, reduction="none"))
    return tok_loss.mean()


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
        label_smoothing = 0.0
        soft_targets = None   # distillation: example token ids (tuple) -> first-token target
        head_lps = None       # training for the mix: example token ids -> n-gram head log-probs
        poe_weight = 0.0
        first_ids = None

        @staticmethod
        def per_row(table, input_ids, attention_mask):
            if not table:
                return None
            rows = [tuple(ids[m.bool()].tolist()) for ids, m in zip(input_ids, attention_mask)]
            return torch.tensor([table[r] for r in rows])

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mask = inputs.get("attention_mask")
            loss = lean_loss(model, inputs["input_ids"], mask, inputs["labels"],
                             self.shared_prefix, self.label_smoothing,
                             self.per_row(self.soft_targets, inputs["input_ids"], mask), self.first_ids,
                             self.per_row(self.head_lps, inputs["input_ids"], mask), self.poe_weight)
            return (loss, None) if return_outputs else loss

    return LeanSFTTrainer


def sft_args(out_dir, cfg, epochs, lr, seed, smoke):
    from trl import SFTConfig
    return SFTConfig(
        output_dir=out_dir, num_train_epochs=epochs, per_device_train_batch_size=cfg["batch_size"],
        learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=cfg["weight_decay"],
        adam_beta2=0.98, max_grad_norm=1.0, logging_steps=5 if smoke else 50, save_strategy="no",
        report_to="none", seed=seed, data_seed=seed, use_cpu=True, dataloader_num_workers=0,
        dataloader_pin_memory=False, train_sampling_strategy="group_by_length", max_length=512,
        bf16=False, fp16=False, disable_tqdm=True, packing=False,
        gradient_checkpointing=False,  # TRL's default (True) recomputes activations: pure cost here
    )


def sft_epochs(train_d, cfg, seed, extra=None, enc=None):
    """The SFT examples of all epochs (chat prompt-completion form); with extra (normalized text ->
    {"soft": first-token target over the labels, "head": n-gram head log-probabilities}, either or
    both) each example carries those fields. With
    cfg["bpe_dropout"] > 0 the examples are tokenized here (input_ids + completion_mask, which TRL
    takes as they are), the comment with BPE-dropout, a fresh segmentation for every example."""
    drop = None
    if cfg["bpe_dropout"] > 0:
        from scoring import BPEDropout
        drop = BPEDropout(enc.tokenizer_json, cfg["bpe_dropout"], seed)
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
                if extra is not None:
                    rows[-1].update(extra[r["key"]])
                if drop is not None:
                    prompt = enc.head + drop.comment_ids(enc, text) + enc.tail
                    answer = enc.label_ids[LABELS.index(r["label"])]
                    rows[-1]["input_ids"] = prompt + answer
                    rows[-1]["completion_mask"] = [0] * len(prompt) + [1] * len(answer)
    return rows


def trl_prompt(tok, comment, trl_ids, cfg):
    """The prompt ids TRL trained on; with BPE-dropout the examples are tokenized here, so the check
    renders the chat template itself (what TRL does with untokenized examples)."""
    if cfg["bpe_dropout"] <= 0:
        return trl_ids
    msgs = [{"role": "user", "content": PROMPT_PREFIX + comment}]
    out = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def distillation_targets(cfg, train_d):
    """normalized text -> first-token target (1 - a) * one-hot(label) + a * teacher, with the teacher's
    probabilities cross-fitted over the training comments of this run (never the validation fold)."""
    if cfg["kd_alpha"] <= 0:
        return None, {}
    import teacher
    t = time.time()
    p = teacher.cross_fitted(train_d, cfg["kd_parts"])
    a = cfg["kd_alpha"]
    y = np.array([LABELS.index(r["label"]) for r in train_d])
    soft = {r["key"]: ((1 - a) * np.eye(len(LABELS))[yi] + a * pi).tolist() for r, yi, pi in zip(train_d, y, p)}
    info = {"alpha": a, "parts": cfg["kd_parts"], "seconds": time.time() - t,
            "teacher_accuracy_cross_fitted": float(np.mean(p.argmax(1) == y)),
            "teacher_nll_cross_fitted": float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12))))}
    log("teacher (cross-fitted over %d parts): accuracy %.4f, NLL %.4f, in %.0f s" % (
        info["parts"], info["teacher_accuracy_cross_fitted"], info["teacher_nll_cross_fitted"], info["seconds"]))
    return soft, info


def head_log_probs(cfg, train_d):
    """normalized text -> the n-gram head's log-probabilities for training for the mix, cross-fitted:
    each comment's from a head fitted on the other poe_parts - 1 parts (a head that saw the comment's
    label would be nearly certain of it on every training comment, and leave the Gemma model nothing)."""
    if cfg["poe_weight"] <= 0:
        return None, {}
    import ngram_head
    t = time.time()
    k = cfg["poe_parts"]
    part = [int(hashlib.sha1(("head:" + r["key"]).encode("utf-8")).hexdigest(), 16) % k for r in train_d]
    lps = {}
    for p in range(k):
        rest = [r for r, q in zip(train_d, part) if q != p]
        mine = [r for r, q in zip(train_d, part) if q == p]
        if mine and rest:
            head = ngram_head.fit(rest, bits=cfg["ngram_bits"])
            for r, lp in zip(mine, ngram_head.log_probs(head, [r["text"] for r in mine])):
                lps[r["key"]] = lp.tolist()
    y = [LABELS.index(r["label"]) for r in train_d]
    lp = np.array([lps[r["key"]] for r in train_d])
    info = {"weight": cfg["poe_weight"], "parts": k, "seconds": time.time() - t,
            "head_accuracy_cross_fitted": float(np.mean(lp.argmax(1) == y))}
    log("training for the mix: head cross-fitted over %d parts, accuracy %.4f, in %.0f s" % (
        k, info["head_accuracy_cross_fitted"], info["seconds"]))
    return lps, info


def by_ids(tokenized, sft_ds, field):
    """Example token ids -> the example's field (first-token target, head log-probs): TRL tokenizes
    the examples in order, so row i of its dataset is row i of ours."""
    assert len(tokenized) == len(sft_ds), "TRL dropped or added examples"
    return dict(zip(map(tuple, tokenized["input_ids"]), sft_ds[field]))


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


def snapshot_marks(cfg):
    """Epoch positions to snapshot, from the candidate list (the last epoch is the final state)."""
    marks = set()
    for v in cfg["variants"].split("|"):
        marks.update(float(m) for m in v.split("+"))
    return sorted(m for m in marks if m < cfg["sft_epochs"])


def snapshot_callback(cfg, snaps):
    from transformers import TrainerCallback
    marks = snapshot_marks(cfg)

    class Snapshots(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            for m in marks:
                if state.global_step == max(1, round(m / cfg["sft_epochs"] * state.max_steps)) and m not in snaps:
                    snaps[m] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Snapshots()


def variant_model(model, snaps, spec):
    """A copy of model with the average of the snapshots named in spec (e.g. "2+3")."""
    import copy
    m = copy.deepcopy(model)
    m.load_state_dict(average_states([snaps[float(x)] for x in spec.split("+")]))
    m.eval()
    return m


def average_states(states):
    """Uniform average of state dicts (non-float buffers from the first)."""
    if len(states) == 1:
        return states[0]
    return {k: sum(sd[k] for sd in states) / len(states) if states[0][k].is_floating_point() else states[0][k]
            for k in states[0]}


def sft_once(Trainer, model, cfg, train_d, extra, enc, tok, out, seed, smoke):
    """One SFT run of model (trained in place) with this seed; returns its snapshots (the last = the
    final weights), TRL's result and its first rendered example (for the prompt checks)."""
    from datasets import Dataset
    seed_all(seed)
    sft_rows = sft_epochs(train_d, cfg, seed, extra, enc)
    counts = {lab: sum(1 for r in sft_rows if r["completion"][0]["content"] == lab) for lab in LABELS}
    log("SFT (seed %d) examples over all epochs: %d %s" % (seed, len(sft_rows), counts))
    sft_ds = Dataset.from_list(sft_rows).shuffle(seed=seed)
    # the epochs are materialised in sft_rows (different Not Hate halves), so one pass over it
    s_args = sft_args(os.path.join(out, "sft"), cfg, 1, cfg["sft_lr"], seed, smoke)
    s_args.completion_only_loss = True
    snaps = {}
    trainer = Trainer(model=model, args=s_args, train_dataset=sft_ds, processing_class=tok,
                      callbacks=[snapshot_callback(cfg, snaps)])
    trainer.shared_prefix = enc.head
    trainer.label_smoothing = cfg["label_smoothing"]
    trainer.first_ids = enc.first_ids
    if "soft" in sft_ds.column_names:
        trainer.soft_targets = by_ids(trainer.train_dataset, sft_ds, "soft")
    if "head" in sft_ds.column_names:
        trainer.head_lps = by_ids(trainer.train_dataset, sft_ds, "head")
        trainer.poe_weight = cfg["poe_weight"]
    # the rendered training example must be the prompt gemmaclf scores, followed by the answer
    ex = trainer.train_dataset[0]
    if cfg["bpe_dropout"] > 0:  # TRL must train on our tokenization, not re-tokenize the text
        assert ex["input_ids"] == sft_ds[0]["input_ids"], "TRL re-tokenized the pre-tokenized examples"
    res = trainer.train()
    snaps[float(cfg["sft_epochs"])] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"snaps": snaps, "result": res, "example": ex, "counts": counts,
            "comment": sft_ds[0]["prompt"][0]["content"][len(PROMPT_PREFIX):]}


def train_model(cfg, train_d, tok_rows, out, args):
    """Tokenizer -> model from scratch -> LM phase -> SFT. Returns a dict with the model, its encoder
    and tokenizer, the SFT snapshots (epoch position -> state dict) and what the report needs."""
    from datasets import Dataset
    from transformers import Gemma3ForCausalLM
    Trainer = lean_trainer_class()
    import tokenizer_train
    from scoring import PromptEncoder
    timings = {}
    os.makedirs(out, exist_ok=True)

    # 1. tokenizer (on the training comments of this run only)
    t = time.time()
    tok_dir = os.path.join(out, "tokenizer")
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
    model = Gemma3ForCausalLM(model_config(cfg, tok))
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

    # 4. SFT in the chat format, loss on the answer only; Extreme Hate oversampled; snapshots
    probe = [r for r in train_d[:200]]
    loss_before = completion_loss(model, enc, probe)
    t = time.time()
    soft, kd_info = distillation_targets(cfg, train_d)
    head_lp, poe_info = head_log_probs(cfg, train_d)
    timings["teacher_s"] = kd_info.get("seconds", 0.0) + poe_info.get("seconds", 0.0)
    tables = {name: t for name, t in (("soft", soft), ("head", head_lp)) if t is not None}
    extra = {r["key"]: {name: t[r["key"]] for name, t in tables.items()} for r in train_d} if tables else None
    lm_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg["soup"] > 1 else None
    soups = []
    for i in range(cfg["soup"]):
        if i:  # every fine-tune of the soup starts from the same LM-phase weights
            model.load_state_dict(lm_state)
            model.train()
        soups.append(sft_once(Trainer, model, cfg, train_d, extra, enc, tok, out, args.seed + i, args.smoke))
    snaps = {m: average_states([r["snaps"][m] for r in soups]) for m in soups[0]["snaps"]}
    model.load_state_dict(snaps[float(cfg["sft_epochs"])])
    model.eval()
    sft_res, ex, ex_comment, sft_counts = (soups[0][k] for k in ("result", "example", "comment", "counts"))
    timings["sft_phase_s"] = time.time() - t
    loss_after = completion_loss(model, enc, probe)
    log("SFT: loss %.4f in %.0f s; answer loss on 200 train comments %.4f -> %.4f; snapshots at epochs %s" % (
        sft_res.training_loss, timings["sft_phase_s"], loss_before, loss_after, sorted(snaps)))
    ids = ex["input_ids"]
    n_prompt = ex["completion_mask"].index(1)
    return {
        "model": model, "enc": enc, "tok": tok, "tok_dir": tok_dir, "snaps": snaps, "timings": timings,
        "info": {"config": cfg, "sft_examples": sft_counts, "seed": args.seed, "smoke": args.smoke,
                 "params": nparams, "vocab": nvocab, "lm_loss": lm_info["loss"], "lm_reused": args.reuse_lm,
                 "sft_loss": sft_res.training_loss, "answer_loss_before_sft": loss_before,
                 "answer_loss_after_sft": loss_after, "label_first_ids": enc.first_ids,
                 "prompt_head_ids": enc.head, "prompt_tail_ids": enc.tail,
                 "trl_prompt_matches_scoring_prompt": trl_prompt(tok, ex_comment, ids[:n_prompt], cfg) ==
                 enc.prompt_ids(ex_comment),
                 "trl_answer_ids": ids[n_prompt:], "torch_threads": torch.get_num_threads(),
                 "n_train_distinct": len(train_d), "distillation": kd_info, "training_for_mix": poe_info},
    }


def choose(scores, y, rule="zero"):
    """The score bias, then the temperature for calibration with that bias. rule "grid": the bias
    maximising the smoothed macro-F1 on these predictions; "zero": no bias (the grid's choice is
    still computed and reported). Measured (train/runs.md): a grid bias chosen on one fold, applied to
    another fold's model, scored below no bias in 3 of 4 cases (a tie in the 4th), and on dev in both
    final models -- the macro-F1 surface is flat and the grid follows its noise."""
    import calibrate
    import evaluate as ev
    if rule not in ("grid", "zero"):
        raise ValueError("bias_rule must be grid or zero, not %r" % rule)
    choice = ev.choose_bias(scores, y)
    bias = [0.0, choice["Hate"], choice["Extreme Hate"]] if rule == "grid" else [0.0, 0.0, 0.0]
    temp = calibrate.fit_temperature(scores, y, bias)
    jb, jt = calibrate.fit_bias_temperature(scores, y)
    return {"bias": bias, "temperature": temp, "rule": rule, "grid_bias": [0.0, choice["Hate"], choice["Extreme Hate"]],
            "smoothed_macro_f1": choice["smoothed_macro_f1" if rule == "grid" else "zero_bias_smoothed_macro_f1"],
            "zero_bias_macro_f1": choice["zero_bias_macro_f1"], "bias_grid": choice["grid"],
            "bias_grid_macro_f1": choice["macro_f1"], "nll_optimal_bias": jb, "nll_optimal_temperature": jt}


def fold_scores_summary(scores, y, ch):
    import calibrate
    import evaluate as ev
    pred = np.argmax(scores + np.array(ch["bias"]), 1).tolist()
    return {"metrics": ev.metrics(y, pred), "metrics_zero_bias": ev.metrics(y, np.argmax(scores, 1).tolist()),
            "calibration_t1": {k: v for k, v in calibrate.summary(scores, y, ch["bias"], 1.0).items() if k != "bins"},
            "calibration": calibrate.summary(scores, y, ch["bias"], ch["temperature"])}


def as_seen(rows, cfg):
    """The rows with their comments as the model sees them (cfg comment_norm). Applied after the
    grouping into distinct comments and folds, so that the folds stay those of every other run."""
    if not int(cfg["comment_norm"]):
        return rows
    return [dict(r, text=squeeze_comment(r["text"])) for r in rows]


def run_fold(args, cfg, fold, out):
    """Train on the other folds, score this fold with every weight-averaging candidate."""
    from scoring import label_logprobs
    t_all = time.time()
    train_rows = load_split("train")
    all_d = subsample(distinct(train_rows), cfg["n_train"], args.seed)
    fold_of = cv_fold_of(all_d, cfg["n_folds"])
    tr = [r for r, f in zip(all_d, fold_of) if f != fold]
    va = [r for r, f in zip(all_d, fold_of) if f == fold]
    keys = set(r["key"] for r in tr)
    tok_rows = [r for r in train_rows if norm_text(r["text"]) in keys] if not args.smoke else tr
    log("fold %d of %d: train %d distinct comments, validation %d (%s)" % (
        fold, cfg["n_folds"], len(tr), len(va),
        {lab: sum(r["label"] == lab for r in va) for lab in LABELS}))
    tr, va, tok_rows = as_seen(tr, cfg), as_seen(va, cfg), as_seen(tok_rows, cfg)
    res = train_model(cfg, tr, tok_rows, out, args)
    t = time.time()
    y = [LABELS.index(r["label"]) for r in va]
    cands, npz = {}, {"y": np.array(y), "count": np.array([r["count"] for r in va])}
    for spec in cfg["variants"].split("|"):
        m = variant_model(res["model"], res["snaps"], spec)
        sc = label_logprobs(m, res["enc"], [r["text"] for r in va]).numpy()
        npz["scores_" + spec] = sc
        ch = choose(sc, y, cfg["bias_rule"])
        cands[spec] = dict(choice={k: v for k, v in ch.items() if not k.startswith("bias_grid")},
                           **fold_scores_summary(sc, y, ch))
        mt = cands[spec]["metrics"]
        log("fold %d candidate %s: macro-F1 %.4f EH F1 %.4f (bias %s, smoothed %.4f; zero bias %.4f) T %.3f "
            "ECE %.4f -> %.4f" % (fold, spec, mt["macro"]["f1"], mt["per_class"]["Extreme Hate"]["f1"],
                                  ch["bias"], ch["smoothed_macro_f1"], ch["zero_bias_macro_f1"], ch["temperature"],
                                  cands[spec]["calibration_t1"]["ece"], cands[spec]["calibration"]["ece"]))
    if int(cfg["ngram_head"]):
        import ngram_head
        npz["ngram_head"] = ngram_head.log_probs(ngram_head.fit(tr, int(cfg["ngram_bits"])), [r["text"] for r in va])
        log("fold %d: n-gram head alone macro-F1 %.4f" % (fold, _macro_f1(y, npz["ngram_head"])))
    np.savez(os.path.join(out, "val_scores.npz"), **npz)
    res["timings"]["val_scoring_s"] = time.time() - t
    res["timings"]["total_s"] = time.time() - t_all
    rep = dict(res["info"], fold=fold, n_folds=cfg["n_folds"], n_val=len(va), candidates=cands,
               timings_s=res["timings"])
    with open(os.path.join(out, "cv.json"), "w") as f:
        json.dump(rep, f, indent=1)
    log("fold %d done in %.0f s" % (fold, time.time() - t_all))
    return rep


def _macro_f1(y, scores):
    import evaluate as ev
    return ev.metrics(y, np.argmax(scores, 1).tolist())["macro"]["f1"]


def fold_head_scores(d, data, bits):
    """A fold run's n-gram head log-probabilities on its validation comments: saved by the fold run,
    or (fold runs made before the head existed, full data only) fitted now on that fold's training
    comments."""
    import ngram_head
    if "ngram_head" in data.files:
        return data["ngram_head"]
    cv = json.load(open(os.path.join(d, "cv.json")))
    assert not cv.get("smoke"), "%s: a smoke fold run without n-gram head scores" % d
    tr, va = fold_split(cv["fold"], cv["n_folds"])
    assert [LABELS.index(r["label"]) for r in va] == data["y"].tolist(), "%s: not fold %d's comments" % (d, cv["fold"])
    return ngram_head.log_probs(ngram_head.fit(tr, bits), [r["text"] for r in va])


def calibration_from_folds(fold_dirs, rule, cfg=None):
    """Pool the validation predictions of the folds; pick the candidate with the best smoothed
    macro-F1 at its chosen bias (rule: see choose); with the n-gram head, its weight (the best pooled
    macro-F1 at bias 0 over ngram_head.WEIGHTS); then the bias and temperature on the pooled
    predictions of what is served."""
    import ngram_head
    cfg = cfg or FULL
    data = [np.load(os.path.join(d, "val_scores.npz")) for d in fold_dirs]
    specs = [k[len("scores_"):] for k in data[0].files if k.startswith("scores_")]
    y = np.concatenate([d["y"] for d in data]).tolist()
    per = {}
    for spec in specs:
        sc = np.concatenate([d["scores_" + spec] for d in data])
        ch = choose(sc, y, rule)
        per[spec] = (ch, sc)
    best = max(specs, key=lambda s: per[s][0]["smoothed_macro_f1"])
    ch, sc = per[best]
    weight, by_weight = 0.0, {}
    if int(cfg["ngram_head"]):
        lp = np.concatenate([fold_head_scores(d, x, int(cfg["ngram_bits"])) for d, x in zip(fold_dirs, data)])
        weight, by_weight = ngram_head.choose_weight(sc, lp, y)
        sc = ngram_head.combine(sc, lp, weight)
        ch = choose(sc, y, rule)
    summ = fold_scores_summary(sc, y, ch)
    per_fold = []
    off = 0
    for d in data:  # each fold scored with the pooled bias (spread across folds)
        n = len(d["y"])
        per_fold.append(fold_scores_summary(sc[off:off + n], y[off:off + n], ch)["metrics"])
        off += n
    return {"variant": best, "bias": ch["bias"], "temperature": ch["temperature"], "folds": list(fold_dirs),
            "ngram_weight": weight, "ngram_weight_macro_f1": {str(w): f for w, f in by_weight.items()},
            "choice": {k: v for k, v in ch.items() if not k.startswith("bias_grid")},
            "candidates_smoothed_macro_f1": {s: per[s][0]["smoothed_macro_f1"] for s in specs},
            "pooled": summ, "per_fold_metrics": per_fold, "_val": (sc, y)}


def run_final(args, cfg, calib, out):
    """The model on all of train, with the candidate, bias and temperature chosen on the folds;
    dev scored for the report only."""
    import calibrate
    import evaluate as ev
    from transformers import Gemma3ForCausalLM
    from scoring import label_logprobs
    t_all = time.time()
    train_rows = load_split("train")
    dev_rows = subsample(load_split("dev"), cfg["n_dev"], args.seed)
    train_d = subsample(distinct(train_rows), cfg["n_train"], args.seed)
    log("final model: train %d rows, %d distinct used; dev: %d rows" % (len(train_rows), len(train_d), len(dev_rows)))
    dev_dist = as_seen(distinct(dev_rows), cfg)
    dev_rows, train_d = as_seen(dev_rows, cfg), as_seen(train_d, cfg)
    res = train_model(cfg, train_d, as_seen(train_rows, cfg) if not args.smoke else train_d, out, args)
    timings = res["timings"]
    model = variant_model(res["model"], res["snaps"], calib["variant"])
    enc, tok = res["enc"], res["tok"]
    bias, temp = calib["bias"], calib["temperature"]

    t = time.time()
    s_rows = label_logprobs(model, enc, [r["text"] for r in dev_rows]).numpy()
    s_dist = label_logprobs(model, enc, [r["text"] for r in dev_dist]).numpy()
    s_gemma_dist = s_dist
    weight, head = calib.get("ngram_weight", 0.0), None
    if weight > 0:  # what gemmaclf serves: the Gemma scores mixed with the head's
        import ngram_head
        head = ngram_head.fit(train_d, int(cfg["ngram_bits"]))
        s_rows = ngram_head.combine(s_rows, ngram_head.log_probs(head, [r["text"] for r in dev_rows]), weight)
        s_dist = ngram_head.combine(s_dist, ngram_head.log_probs(head, [r["text"] for r in dev_dist]), weight)
        timings["ngram_head_s"] = time.time() - t
    y_rows = [LABELS.index(r["label"]) for r in dev_rows]
    y_dist = [LABELS.index(r["label"]) for r in dev_dist]
    m_rows = ev.metrics(y_rows, np.argmax(s_rows + np.array(bias), 1).tolist())
    m_dist = ev.metrics(y_dist, np.argmax(s_dist + np.array(bias), 1).tolist())
    m0_dist = ev.metrics(y_dist, np.argmax(s_dist, 1).tolist())
    m_gemma_dist = ev.metrics(y_dist, np.argmax(s_gemma_dist, 1).tolist())
    m0_rows = ev.metrics(y_rows, np.argmax(s_rows, 1).tolist())
    cal_dev = calibrate.summary(s_dist, y_dist, bias, temp)
    cal_dev_t1 = calibrate.summary(s_dist, y_dist, bias, 1.0)
    cal_dev_rows = calibrate.summary(s_rows, y_rows, bias, temp)
    sv, yv = calib["_val"]
    calibrate.reliability_plot([
        ("validation fold(s), T=%.2f (fitted here)" % temp, calibrate.probs(sv, bias, temp), yv),
        ("distinct dev comments, T=1", calibrate.probs(s_dist, bias, 1.0), y_dist),
        ("distinct dev comments, T=%.2f" % temp, calibrate.probs(s_dist, bias, temp), y_dist)],
        os.path.join(out, "reliability.png"))
    timings["eval_s"] = time.time() - t

    # export
    mdir = os.path.join(out, "model")
    if os.path.isdir(mdir):
        shutil.rmtree(mdir)
    model.config.use_cache = True
    model.to(torch.float32).save_pretrained(mdir, safe_serialization=True)
    res["model"].generation_config.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    for f in ("tokenizer.json", "tokenizer_config.json"):  # keep our exact files
        shutil.copy(os.path.join(res["tok_dir"], f), os.path.join(mdir, f))
    for f in os.listdir(mdir):
        if f not in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                     "tokenizer_config.json", "ngram_head.safetensors"):
            os.remove(os.path.join(mdir, f))
    fix_special_ids(mdir)
    gc = {"labels": LABELS, "prompt_prefix": PROMPT_PREFIX,
          "score_bias": {"Not Hate": 0.0, "Hate": bias[1], "Extreme Hate": bias[2]},
          "temperature": round(temp, 4)}
    if head is not None:
        ngram_head.save(head, os.path.join(mdir, "ngram_head.safetensors"))
        gc["ngram_weight"] = weight
    if int(cfg["comment_norm"]):
        gc["comment_norm"] = "squeeze"
    with open(os.path.join(mdir, "gemmaclf.json"), "w", encoding="utf-8") as f:
        json.dump(gc, f, indent=1)
        f.write("\n")
    timings["total_s"] = time.time() - t_all

    # reload check: the export loads and reproduces the scores
    reloaded = Gemma3ForCausalLM.from_pretrained(mdir, dtype=torch.float32)
    s_re = label_logprobs(reloaded, enc, [r["text"] for r in dev_dist[:32]]).numpy()
    reload_diff = float(np.abs(s_re - s_gemma_dist[:32]).max())

    ev.plot_confusions(m_rows, m_dist, os.path.join(out, "confusion_dev.png"))
    cv = {k: v for k, v in calib.items() if k != "_val"}
    report = dict(res["info"], timings_s=timings, reload_max_abs_diff=reload_diff,
                  cv=cv, variant=calib["variant"], bias=bias, temperature=temp,
                  bias_choice={"Hate": bias[1], "Extreme Hate": bias[2]},
                  dev_rows=m_rows, dev_distinct=m_dist, dev_distinct_zero_bias=m0_dist, dev_rows_zero_bias=m0_rows,
                  ngram_weight=weight, dev_distinct_gemma_alone=m_gemma_dist,
                  dev_distinct_calibration=cal_dev, dev_distinct_calibration_t1=cal_dev_t1,
                  dev_rows_calibration=cal_dev_rows)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = [ev.fmt_table(m_rows, "dev, all rows"), ev.fmt_table(m_dist, "dev, distinct comments"),
          ev.fmt_table(m0_dist, "dev, distinct comments, zero bias")]
    with open(os.path.join(out, "eval.md"), "w") as f:
        f.write("\n".join(md))
    log("dev distinct: macro-F1 %.4f, Extreme Hate F1 %.4f (variant %s, bias %s, T %.3f; zero bias macro-F1 %.4f); "
        "rows macro-F1 %.4f; ECE %.4f (T=1: %.4f)" % (
            m_dist["macro"]["f1"], m_dist["per_class"]["Extreme Hate"]["f1"], calib["variant"], bias, temp,
            m0_dist["macro"]["f1"], m_rows["macro"]["f1"], cal_dev["ece"], cal_dev_t1["ece"]))
    log("timings %s" % json.dumps({k: round(v, 1) for k, v in timings.items()}))
    log("exported %s (reload max |diff| %.2e)" % (mdir, reload_diff))
    return report


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--fold", type=int, default=None, help="train and score this validation fold only")
    ap.add_argument("--calib", default=None, metavar="DIR[,DIR...]",
                    help="train only the final model, with the choices made on these fold runs' outputs")
    ap.add_argument("--tokenizer", default=None,
                    help="reuse this tokenizer.json instead of training one (HF's BPE trainer breaks ties "
                         "between equally frequent pairs in hash order, so fresh tokenizers differ slightly)")
    ap.add_argument("--reuse-lm", action="store_true",
                    help="start SFT from OUT/lm_model (saved by an earlier run's LM phase) instead of redoing it")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe setting, e.g. --set lm_epochs=2 --set cv_folds=0,1")
    # 1 thread: on the shared 2-core machine, 2 OpenMP threads ran 7x SLOWER than 1 under load
    # (measured 220 vs 1,524 tokens/s for a training step); use --threads 2 on an idle machine
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
    t0 = time.time()
    if args.fold is not None:
        return run_fold(args, cfg, args.fold, out)
    if args.calib:
        fold_dirs = [os.path.abspath(d) for d in args.calib.split(",")]
    else:
        fold_dirs = []
        for f in [int(x) for x in cfg["cv_folds"].split(",")]:
            fold_dirs.append(os.path.join(out, "fold%d" % f))
            run_fold(args, cfg, f, fold_dirs[-1])
    calib = calibration_from_folds(fold_dirs, cfg["bias_rule"], cfg)
    log("chosen on %d fold(s): candidate %s, bias %s, temperature %.3f; pooled validation macro-F1 %.4f "
        "EH F1 %.4f ECE %.4f" % (len(fold_dirs), calib["variant"], calib["bias"], calib["temperature"],
                                  calib["pooled"]["metrics"]["macro"]["f1"],
                                  calib["pooled"]["metrics"]["per_class"]["Extreme Hate"]["f1"],
                                  calib["pooled"]["calibration"]["ece"]))
    rep = run_final(args, cfg, calib, out)
    rep["recipe_wall_s"] = time.time() - t0 + (0 if not args.calib else sum(
        json.load(open(os.path.join(d, "cv.json")))["timings_s"]["total_s"] for d in fold_dirs))
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    return rep


if __name__ == "__main__":
    main()
