"""gemmaclf's label scoring rule, computed with transformers.

After the prompt (the Gemma 3 chat template for one user message, add_generation_prompt=True), each
label is scored by the log-probability of its first token (the full token sequence when first tokens
collide; they do not with the bundled tokenizer) plus a per-label bias from gemmaclf.json; the label
with the highest score wins.  The comment is tokenized as raw text: special-token strings inside it
are NOT turned into special tokens (as gemmaclf does).
"""
import json
import os

import torch
from tokenizers import Tokenizer

from common import LABELS, PROMPT_PREFIX


class PromptEncoder:
    def __init__(self, tokenizer_json):
        self.tokenizer_json = tokenizer_json
        self.tk = Tokenizer.from_file(tokenizer_json)
        self.raw = Tokenizer.from_file(tokenizer_json)
        self.raw.encode_special_tokens = True
        enc = lambda s: self.tk.encode(s, add_special_tokens=False).ids
        # PROMPT_PREFIX ends with a space; that space ("▁") starts the comment's first token, and no
        # merge of this tokenizer crosses a "▁" boundary, so head + comment == encoding the whole string.
        self.head = enc("<bos><start_of_turn>user\n" + PROMPT_PREFIX[:-1])
        self.tail = enc("<end_of_turn>\n<start_of_turn>model\n")
        self.label_ids = [enc(lab + "<end_of_turn>\n") for lab in LABELS]
        firsts = [ids[0] for ids in self.label_ids]
        self.first_ids = firsts
        self.distinct_first = len(set(firsts)) == len(firsts)

    def comment_encoding(self, comment):
        """The comment as it follows the prompt prefix (its space first), special-token strings as text.
        The template trims its content, prefix + comment: with an empty (or blank) comment the prefix's
        trailing space goes too, and nothing follows the head (as gemmaclf's prompt.c does)."""
        c = comment.strip()
        return self.raw.encode(PROMPT_PREFIX[-1] + c if c else "", add_special_tokens=False)

    def comment_ids(self, comment, max_tokens=None):
        ids = self.comment_encoding(comment).ids
        return ids[:max_tokens] if max_tokens else ids

    def prompt_ids(self, comment, max_tokens=None):
        """max_tokens: keep only the comment's first tokens (gemmaclf's max_input_tokens)."""
        return self.head + self.comment_ids(comment, max_tokens) + self.tail


@torch.no_grad()
def label_logprobs(model, enc, comments, batch_size=64, max_tokens=None):
    """Return a [N, 3] float tensor: log-prob of each label's first token after the prompt."""
    assert enc.distinct_first, "label first tokens collide; sequence scoring not implemented here"
    model.eval()
    prompts = [enc.prompt_ids(c, max_tokens) for c in comments]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = torch.empty(len(prompts), len(LABELS))
    first = torch.tensor(enc.first_ids)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        T = max(len(prompts[i]) for i in idx)
        ids = torch.zeros(len(idx), T, dtype=torch.long)  # right padding with <pad>=0
        mask = torch.zeros(len(idx), T, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(prompts[i])] = torch.tensor(prompts[i])
            mask[r, :len(prompts[i])] = 1
        # the output head only at each prompt's last position (what gemmaclf computes, too)
        hidden = model.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        last = mask.sum(1) - 1
        logits = model.lm_head(hidden[torch.arange(len(idx)), last]).float()
        cap = model.config.final_logit_softcapping
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        lp = torch.log_softmax(logits, dim=-1)
        out[idx] = lp[:, first]
    return out


def load_bias(model_dir):
    with open(os.path.join(model_dir, "gemmaclf.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    return [float(cfg.get("score_bias", {}).get(lab, 0.0)) for lab in LABELS]


def load_temperature(model_dir):
    """gemmaclf.json "temperature" (default 1): probabilities = softmax((score + bias) / T)."""
    with open(os.path.join(model_dir, "gemmaclf.json"), encoding="utf-8") as f:
        return float(json.load(f).get("temperature", 1.0))


def predict(scores, bias):
    """scores [N,3] log-probs, bias list of 3 -> list of label indices."""
    return (scores + torch.tensor(bias)).argmax(1).tolist()


class BPEDropout:
    """BPE-dropout (Provilkov et al. 2020, "BPE-Dropout: Simple and Effective Subword Regularization")
    for the comments of the training examples: each token of the deterministic encoding is re-built
    from its characters by the tokenizer's merges, each applicable merge skipped with probability p,
    so the model sees a word both whole and in pieces (spelling varies a lot in Hinglish). Merges never
    cross a token of the deterministic encoding (they never cross a "▁" word start either way).
    Inference (gemmaclf) always uses the deterministic encoding. (tokenizers' own BPE dropout left
    this tokenizer's output unchanged in tokenizers 0.23, hence this.)"""

    def __init__(self, tokenizer_json, p, seed):
        import json
        import random
        with open(tokenizer_json, encoding="utf-8") as f:
            model = json.load(f)["model"]
        self.vocab = model["vocab"]
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.p = p
        self.rng = random.Random(seed)

    def split(self, token):
        parts = list(token)
        if self.p <= 0 or len(parts) < 2 or any(c not in self.vocab for c in parts):
            return [token]  # byte-fallback tokens and single characters stay as they are
        while True:
            cands = [(self.rank[(a, b)], i) for i, (a, b) in enumerate(zip(parts, parts[1:]))
                     if (a, b) in self.rank and self.rng.random() >= self.p]
            if not cands:
                return parts
            _, i = min(cands)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]

    def comment_ids(self, enc, comment):
        e = enc.comment_encoding(comment)
        out = []
        for tid, tok in zip(e.ids, e.tokens):
            pieces = self.split(tok)
            out.extend([tid] if len(pieces) == 1 else [self.vocab[s] for s in pieces])
        return out
