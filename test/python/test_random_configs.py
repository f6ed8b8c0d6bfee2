#!/usr/bin/env python3
"""Randomised parity of `gemmaclf logits` with transformers itself.

Builds a few small random Gemma3ForCausalLM models (GQA/MQA, sliding patterns, soft-capping,
linear RoPE scaling, tied and untied heads, F32 and BF16 checkpoints), saves them with
save_pretrained, and compares the CLI's logits with transformers' (eager attention, float32)
within 1e-4 of the largest absolute reference logit, plus identical argmax at every position.

Run from the repository root: python test/python/test_random_configs.py
(GC_BIN selects the CLI, default bin/gemmaclf; GC_RANDOM_CONFIGS the number of models.)
"""
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    import torch
    from transformers import (Gemma3Config, Gemma3ForCausalLM, Gemma3ForConditionalGeneration,
                              Gemma3TextConfig, SiglipVisionConfig)
except Exception as exc:  # noqa: BLE001 - without the reference nothing is checked: a failure
    print(f"FAIL: transformers/torch not importable ({exc.__class__.__name__}: {exc})")
    print("test_random_configs: 0 passed, 1 failed")
    sys.exit(1)

TOL = 1e-4


def random_config(rng, i):
    n_kv = rng.choice([1, 1, 2])
    n_heads = n_kv * rng.choice([1, 2, 3])
    head_dim = rng.choice([8, 16, 32])
    n_layers = rng.randint(2, 5)
    window = rng.randint(2, 10)
    if rng.random() < 0.5:
        layer_types = [rng.choice(["sliding_attention", "full_attention"]) for _ in range(n_layers)]
        pattern = {"layer_types": layer_types}
    else:
        pattern = {"sliding_window_pattern": rng.randint(1, 4)}
    full = {"rope_type": "default", "rope_theta": rng.choice([1e4, 1e5, 1e6])}
    if rng.random() < 0.5:
        full = {"rope_type": "linear", "factor": rng.choice([2.0, 8.0]), "rope_theta": 1e6}
    cfg = dict(
        vocab_size=rng.randint(100, 700),
        # transformers insists that hidden_size is a multiple of num_attention_heads
        hidden_size=rng.choice([h for h in (32, 48, 64, 96) if h % n_heads == 0]),
        intermediate_size=rng.choice([64, 96, 160]),
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        head_dim=head_dim,
        query_pre_attn_scalar=rng.choice([head_dim, head_dim * 2, 24]),
        sliding_window=window,
        final_logit_softcapping=rng.choice([None, 30.0, 5.0]),
        attn_logit_softcapping=rng.choice([None, 50.0]),
        tie_word_embeddings=rng.random() < 0.5,
        max_position_embeddings=512,
        rope_parameters={"full_attention": full,
                         "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
        **pattern,
    )
    if "sliding_window_pattern" in cfg:
        p = cfg.pop("sliding_window_pattern")
        cfg["layer_types"] = ["sliding_attention" if (j + 1) % p else "full_attention"
                              for j in range(n_layers)]
    return cfg, window


def build(rng, cfg, bf16, path):
    torch.manual_seed(rng.randint(0, 2**31))
    model = Gemma3ForCausalLM(Gemma3TextConfig(**cfg)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(0.0, 0.3)  # norm weights (used as 1 + w)
            else:
                p.normal_(0.0, 0.2 if "embed" in name or "lm_head" in name else 0.15)
    if bf16:
        model = model.to(torch.bfloat16)
    model.save_pretrained(path)
    # the reference: the saved checkpoint upcast to float32, eager attention
    ref = Gemma3ForCausalLM.from_pretrained(path, dtype=torch.float32,
                                            attn_implementation="eager").eval()
    return ref


def run_cli(gc_bin, path, seqs):
    inp = "".join(json.dumps(s) + "\n" for s in seqs)
    out = subprocess.run([gc_bin, "logits", path, "--threads", "2", "--batch", "3"],
                         input=inp, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"gemmaclf logits failed ({out.returncode}): {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines()]


def multimodal_case(gc_bin, rng):
    """A tiny Gemma3ForConditionalGeneration: gemmaclf reads text_config and the language
    model's weights (saved under language_model.*) and must match its text-only logits."""
    text = dict(vocab_size=300, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                query_pre_attn_scalar=16, max_position_embeddings=256)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, image_size=28, patch_size=14)
    cfg = Gemma3Config(text_config=text, vision_config=vision.to_dict(), mm_tokens_per_image=4,
                       boi_token_index=290, eoi_token_index=291, image_token_index=292)
    torch.manual_seed(rng.randint(0, 2**31))
    model = Gemma3ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3 if p.dim() == 1 else 0.15)
    seqs = [[rng.randrange(290) for _ in range(n)] for n in (3, 11)]
    with tempfile.TemporaryDirectory(prefix="gc-randcfg-") as path:
        model.save_pretrained(path)
        got = run_cli(gc_bin, path, seqs)
    worst, ok = 0.0, len(got) == len(seqs)
    for s, g in zip(seqs, got):
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([s])).logits[0].float()
        g = torch.tensor(g, dtype=torch.float32)
        err = ((g - ref).abs().max() / ref.abs().max()).item()
        worst = max(worst, err)
        ok = ok and err <= TOL and torch.equal(g.argmax(-1), ref.argmax(-1))
    return ok, worst


def main():
    gc_bin = os.environ.get("GC_BIN", "bin/gemmaclf")
    if not os.access(gc_bin, os.X_OK):
        print(f"test_random_configs: CLI {gc_bin} not found (run make first)")
        print("test_random_configs: 0 passed, 1 failed")
        return 1
    n_models = int(os.environ.get("GC_RANDOM_CONFIGS", "6"))
    rng = random.Random(int(os.environ.get("GC_RANDOM_SEED", "1234")))
    passed = failed = 0
    torch.set_num_threads(2)
    for i in range(n_models):
        cfg, window = random_config(rng, i)
        bf16 = i % 2 == 1
        desc = (f"model {i}: layers={cfg['num_hidden_layers']} heads={cfg['num_attention_heads']}/"
                f"{cfg['num_key_value_heads']} hd={cfg['head_dim']} window={window} "
                f"tied={cfg['tie_word_embeddings']} bf16={bf16} "
                f"rope={cfg['rope_parameters']['full_attention']['rope_type']} "
                f"final_cap={cfg['final_logit_softcapping']}")
        with tempfile.TemporaryDirectory(prefix="gc-randcfg-") as path:
            try:
                ref_model = build(rng, cfg, bf16, path)
                lens = [1, rng.randint(2, window + 1), 2 * window + rng.randint(1, 8),
                        rng.randint(10, 40)]
                seqs = [[rng.randrange(cfg["vocab_size"]) for _ in range(n)] for n in lens]
                got = run_cli(gc_bin, path, seqs)
                ok = len(got) == len(seqs)
                worst = 0.0
                for s, g in zip(seqs, got):
                    with torch.no_grad():
                        ref = ref_model(torch.tensor([s])).logits[0].float()
                    g = torch.tensor(g, dtype=torch.float32)
                    if g.shape != ref.shape:
                        ok = False
                        break
                    err = ((g - ref).abs().max() / ref.abs().max()).item()
                    worst = max(worst, err)
                    if err > TOL or not torch.equal(g.argmax(-1), ref.argmax(-1)):
                        ok = False
                print(f"{'ok  ' if ok else 'FAIL'} {desc}: max rel err {worst:.3g}")
            except Exception as exc:  # noqa: BLE001 - report and count as a failure
                ok = False
                print(f"FAIL {desc}: {exc}")
        passed += ok
        failed += not ok
    try:
        ok, worst = multimodal_case(gc_bin, rng)
        print(f"{'ok  ' if ok else 'FAIL'} multimodal Gemma3ForConditionalGeneration: "
              f"max rel err {worst:.3g}")
    except Exception as exc:  # noqa: BLE001
        ok = False
        print(f"FAIL multimodal Gemma3ForConditionalGeneration: {exc}")
    passed += ok
    failed += not ok
    print(f"test_random_configs: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
