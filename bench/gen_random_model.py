#!/usr/bin/env python3
"""Writes a random F32 Gemma 3 checkpoint of gemma-3-270m's shape (hidden 640, 18 layers,
4 heads, 1 kv head, head_dim 256, intermediate 2048, vocab 262144) for benchmarks:
config.json + model.safetensors (~1.1 GB) in the directory given (default /tmp/gc-bench-270m).
Only numpy is needed. Skips the work when the directory already holds a complete checkpoint."""
import json
import os
import struct
import sys

import numpy as np

H, FF, NL, NH, NKV, HD, V = 640, 2048, 18, 4, 1, 256, 262144


def tensors():
    yield "model.embed_tokens.weight", (V, H)
    yield "model.norm.weight", (H,)
    for l in range(NL):
        p = f"model.layers.{l}."
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            yield p + n + ".weight", (H,)
        yield p + "self_attn.q_norm.weight", (HD,)
        yield p + "self_attn.k_norm.weight", (HD,)
        yield p + "self_attn.q_proj.weight", (NH * HD, H)
        yield p + "self_attn.k_proj.weight", (NKV * HD, H)
        yield p + "self_attn.v_proj.weight", (NKV * HD, H)
        yield p + "self_attn.o_proj.weight", (H, NH * HD)
        yield p + "mlp.gate_proj.weight", (FF, H)
        yield p + "mlp.up_proj.weight", (FF, H)
        yield p + "mlp.down_proj.weight", (H, FF)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gc-bench-270m"
    os.makedirs(out, exist_ok=True)
    st_path = os.path.join(out, "model.safetensors")
    header, off = {}, 0
    for name, shape in tensors():
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hjson = json.dumps(header).encode()
    hjson += b" " * (-len(hjson) % 8)
    total = 8 + len(hjson) + off
    if os.path.exists(st_path) and os.path.getsize(st_path) == total and \
            os.path.exists(os.path.join(out, "config.json")):
        print(f"{out}: already complete")
        return
    rng = np.random.default_rng(0)
    with open(st_path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for name, shape in tensors():
            fan_in = shape[-1] if len(shape) == 2 else 1
            scale = 0.1 if len(shape) == 1 else 1.0 / np.sqrt(fan_in)
            a = rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)
            a.tofile(f)
    os.replace(st_path + ".tmp", st_path)
    cfg = {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "dtype": "float32",
        "vocab_size": V, "hidden_size": H, "intermediate_size": FF, "num_hidden_layers": NL,
        "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": HD,
        "query_pre_attn_scalar": 256, "sliding_window": 512, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "bos_token_id": 2, "eos_token_id": [1, 106],
        "pad_token_id": 0, "hidden_activation": "gelu_pytorch_tanh",
        "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                        for i in range(NL)],
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                            "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    print(f"{out}: wrote {total / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
