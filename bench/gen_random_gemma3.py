#!/usr/bin/env python3
"""Writes a randomly initialised Gemma 3 text checkpoint of the gemma-3-270m shape (or a
smaller one) for throughput measurements: config.json as transformers 5.17 writes it and
model.safetensors in float32, with numpy only (plus safetensors).

  gen_random_gemma3.py OUTDIR [--layers N] [--vocab N] [--seed S]

Matrices are N(0, 1/fan_in) (as bench/gen_random_model.py, so that logits are far from uniform
and label margins are not razor-thin); norm weights are N(0, 0.1^2) (the model computes
x * (1 + w)) so that every tensor matters. Unlike gen_random_model.py it can write fewer layers
(dry runs of scripts/gpu-check.sh on a CPU). Shape of google/gemma-3-270m:
hidden 640, intermediate 2048, 18 layers (5 sliding : 1 full), 4 heads of 256, 1 kv head,
vocabulary 262,144, sliding window 512, query_pre_attn_scalar 256, tied embeddings."""
import argparse
import json
import os

import numpy as np
from safetensors.numpy import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=18)
    ap.add_argument("--vocab", type=int, default=262144)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    H, I, NH, NKV, D, L, V = 640, 2048, 4, 1, 256, a.layers, a.vocab
    layer_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                   for i in range(L)]
    cfg = {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "attention_bias": False, "attention_dropout": 0.0, "attn_logit_softcapping": None,
        "final_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": [1, 106],
        "pad_token_id": 0, "dtype": "float32", "head_dim": D,
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": H, "initializer_range": 0.02,
        "intermediate_size": I, "layer_types": layer_types, "max_position_embeddings": 32768,
        "num_attention_heads": NH, "num_hidden_layers": L, "num_key_value_heads": NKV,
        "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6,
        "rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
                            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
        "sliding_window": 512, "tie_word_embeddings": True, "transformers_version": "5.17.0",
        "use_bidirectional_attention": False, "use_cache": True, "vocab_size": V,
    }
    rng = np.random.default_rng(a.seed)

    def normal(*shape, std=None):
        if std is None:
            std = 1.0 / np.sqrt(shape[-1])
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    t = {"model.embed_tokens.weight": normal(V, H), "model.norm.weight": normal(H, std=0.1)}
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = normal(NH * D, H)
        t[p + "self_attn.k_proj.weight"] = normal(NKV * D, H)
        t[p + "self_attn.v_proj.weight"] = normal(NKV * D, H)
        t[p + "self_attn.o_proj.weight"] = normal(H, NH * D)
        t[p + "self_attn.q_norm.weight"] = normal(D, std=0.1)
        t[p + "self_attn.k_norm.weight"] = normal(D, std=0.1)
        t[p + "mlp.gate_proj.weight"] = normal(I, H)
        t[p + "mlp.up_proj.weight"] = normal(I, H)
        t[p + "mlp.down_proj.weight"] = normal(H, I)
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            t[p + n + ".weight"] = normal(H, std=0.1)
    os.makedirs(a.outdir, exist_ok=True)
    save_file(t, os.path.join(a.outdir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    n = sum(x.size for x in t.values())
    print(f"wrote {a.outdir}: {n / 1e6:.1f}M parameters, {L} layers, vocab {V}")


if __name__ == "__main__":
    main()
