"""Copy a recipe run's export into models/<name>/ and write its model card from report.json.

    python train/bundle.py train/out/full models/gemmaclf-hinglish-small [--command "..."]
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import LABELS, fix_special_ids  # noqa: E402
import evaluate as ev  # noqa: E402

FILES = ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
         "tokenizer_config.json", "gemmaclf.json")
OPTIONAL = ("ngram_head.safetensors",)


def hms(s):
    return "%d min %02d s" % (int(s) // 60, int(s) % 60)


def cv_table(rep):
    """Per-candidate validation numbers of every fold run the final model was chosen on."""
    cv = rep["cv"]
    rows = ["| fold | candidate (SFT epochs averaged) | bias (Hate, Extreme Hate) | macro-F1 | Extreme Hate F1 | Hate F1 | Not Hate F1 | macro-F1, no bias | T | ECE, T=1 | ECE, T |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in cv["folds"]:
        fr = json.load(open(os.path.join(d, "cv.json")))
        for spec, c in fr["candidates"].items():
            m, ch = c["metrics"], c["choice"]
            pc = m["per_class"]
            rows.append("| %d | %s | %g, %g | %.4f | %.4f | %.4f | %.4f | %.4f | %.3f | %.4f | %.4f |" % (
                fr["fold"], spec, ch["bias"][1], ch["bias"][2], m["macro"]["f1"], pc["Extreme Hate"]["f1"],
                pc["Hate"]["f1"], pc["Not Hate"]["f1"], c["metrics_zero_bias"]["macro"]["f1"], ch["temperature"],
                c["calibration_t1"]["ece"], c["calibration"]["ece"]))
    return "\n".join(rows)


def head_text(rep):
    """The model card's paragraphs on the n-gram head (empty without one)."""
    w = rep.get("ngram_weight", 0.0)
    if not w:
        return "", "", ""
    cv = rep["cv"]
    g = rep["dev_distinct_gemma_alone"]
    grid = ", ".join("%s: %.4f" % (k, v) for k, v in sorted(cv["ngram_weight_macro_f1"].items(), key=lambda kv: float(kv[0])))
    files = ("| `ngram_head.safetensors` | the n-gram head (%d buckets per part, F32; format in `train/ngram_head.py`) |\n"
             % (1 << int(rep["config"]["ngram_bits"])))
    recipe = f"""7. The n-gram head (`train/ngram_head.py`): a logistic regression (class-balanced, C = 10) over hashed
   TF-IDF features of the comment's bytes (character 2-5-grams within words, word 1-2-grams; 2^{rep['config']['ngram_bits']}
   buckets per part), fitted on the same training comments as each model (on the validation fold's
   complement for the choice, on all of train for the bundle). gemmaclf scores
   (1 - w) log_softmax(Gemma label scores) + w head log-probabilities; w = **{w:g}** was the best pooled
   validation macro-F1 at bias 0 (w: macro-F1 = {grid}); the bias and T above were then chosen on the
   mixed scores.
"""
    dev = (f"| Gemma model alone (no head, no bias; for comparison) | {g['macro']['f1']:.4f} | {g['per_class']['Extreme Hate']['f1']:.4f} | "
           f"{g['per_class']['Hate']['f1']:.4f} | {g['per_class']['Not Hate']['f1']:.4f} |\n")
    return files, recipe, dev


def card(rep, name, command, wall, notes=""):
    c = rep["config"]
    t = dict(rep["timings_s"])
    cv = rep["cv"]
    md, mr = rep["dev_distinct"], rep["dev_rows"]
    m0 = rep["dev_distinct_zero_bias"]
    cal, cal1 = rep["dev_distinct_calibration"], rep["dev_distinct_calibration_t1"]
    pooled = cv["pooled"]
    sft = rep["sft_examples"]
    size_mb = rep.get("_size_bytes", 0) / 1e6
    eh = lambda m: m["per_class"]["Extreme Hate"]["f1"]
    nh_text = ("every Not Hate comment once" if c["not_hate_fraction"] >= 1 else
               "%d%% of the Not Hate comments (alternating parts)" % round(100 * c["not_hate_fraction"]))
    folds = [json.load(open(os.path.join(d, "cv.json"))) for d in cv["folds"]]
    fold_time = sum(f["timings_s"]["total_s"] for f in folds)
    # a fold run with --reuse-lm loaded its LM phase: its total leaves that phase out
    reused = any(f.get("lm_reused") for f in folds)
    steps = "for the steps run here" if reused else "for the whole recipe"
    reused_text = " (their LM phases reused from earlier runs, not counted)" if reused else ""
    nval = sum(f["n_val"] for f in folds)
    vspec = rep["variant"]
    vtext = ("the weights at the end of SFT" if vspec == str(float(c["sft_epochs"])) or vspec == str(c["sft_epochs"])
             else "the average of the SFT weights at epochs %s" % vspec.replace("+", ", "))
    pf = cv["per_fold_metrics"]
    spread = ""
    if len(pf) > 1:
        import statistics
        mf = [m["macro"]["f1"] for m in pf]
        ef = [eh(m) for m in pf]
        spread = " (per fold: macro-F1 %s, mean %.4f ± %.4f; Extreme Hate F1 %s, mean %.4f ± %.4f)" % (
            ", ".join("%.4f" % v for v in mf), statistics.mean(mf), statistics.stdev(mf),
            ", ".join("%.4f" % v for v in ef), statistics.mean(ef), statistics.stdev(ef))
    head_files, head_recipe, head_dev = head_text(rep)
    bias_text = ("gets no score bias (`bias_rule=zero`, train/README.md)" if cv["choice"].get("rule") == "zero" else
                 "gets a score bias (grid of step 0.25 in [-3, 3] for Hate and Extreme Hate, Not Hate fixed at 0, "
                 "maximising the 3x3-neighbourhood mean of macro-F1)")
    served = "the Gemma model with the n-gram head (w %g)" % rep["ngram_weight"] if head_files else "the Gemma model"
    norm_text = ("Every comment, in every step below and when gemmaclf serves the model (`comment_norm`), is read with A-Z\n"
                 "lower-cased and every run of more than 2 equal characters cut to 2 (`train/common.py` `squeeze_comment`).\n\n"
                 if c.get("comment_norm") else "")
    return f"""# {name}

The default model of gemmaclf: a small Gemma 3 (`Gemma3ForCausalLM`, {rep['params'] / 1e6:.2f}M parameters,
{size_mb:.1f} MB in F32) trained from scratch on the Indo-HateSpeech training split, then fine-tuned to answer
`Not Hate`, `Hate` or `Extreme Hate` to the seed's chat prompt{', served with an n-gram head' if head_files else ''}. Everything that was chosen (candidate
weights, {'n-gram head weight, ' if head_files else ''}score bias, temperature) was chosen on a validation fold cut from the training split; dev was
used only for the numbers reported below.

## Files

| file | what |
|---|---|
| `config.json` | transformers 5.x `Gemma3TextConfig` as `save_pretrained` writes it |
| `model.safetensors` | F32 weights, tied embeddings (no `lm_head.weight`) |
| `tokenizer.json`, `tokenizer_config.json` | {rep['vocab']:,}-token Gemma-style BPE (byte fallback) and the Gemma 3 chat template |
| `generation_config.json` | as transformers writes it |
| `gemmaclf.json` | labels, prompt prefix, per-label score bias, temperature, n-gram head weight and comment rewrite for gemmaclf (below) |
{head_files}
`gemmaclf.json`:

```json
{json.dumps(rep['_gemmaclf_json'], indent=1)}
```

- `labels`: the answers, in the order gemmaclf reports them.
- `prompt_prefix`: the user message is `prompt_prefix + comment.strip()`, rendered by the Gemma 3 chat
  template with the generation prompt: `<bos><start_of_turn>user\\n{{prefix}}{{comment}}<end_of_turn>\\n<start_of_turn>model\\n`.
- `score_bias` and `temperature`: a label's score is the log-probability, after the prompt, of its first
  token (`Not` {rep['label_first_ids'][0]}, `Hate` {rep['label_first_ids'][1]}, `Extreme` {rep['label_first_ids'][2]}: distinct). gemmaclf reports
  probabilities = softmax((score + bias) / temperature) and the arg-max label (the temperature never
  changes the label; the bias does: it is a prior correction). Missing labels' bias counts 0; a missing
  temperature counts 1.
- `ngram_weight` w (when present and > 0): the score is (1 - w) x the log-softmax of the Gemma label
  scores + w x the n-gram head's label log-probabilities (`ngram_head.safetensors`), before the bias and
  temperature. transformers alone computes the Gemma part only.
- `comment_norm` (when present): `"squeeze"`: the model was trained on comments with A-Z lower-cased and
  every run of more than 2 equal characters cut to 2, and gemmaclf rewrites each comment so before the
  prompt and the n-gram head (`train/common.py` `squeeze_comment`). Scoring with transformers directly
  must apply it too.

Loads in transformers: `Gemma3ForCausalLM.from_pretrained(dir)`, `AutoTokenizer.from_pretrained(dir)`;
greedy generation answers the label too, but gemmaclf scores the labels (one forward pass, bias applied).

## Data

Indo-HateSpeech (Hinglish Instagram comments, Latin and Devanagari script, emoji), the split shipped in
`../shared/data/indo-hatespeech`: train 40,715 rows, dev 2,097 rows; the test split (about 10% of the
text groups) is held back. Training used the train rows deduplicated by normalized text (NFC, lower
case, whitespace collapsed): 31,577 distinct comments, majority label per text (2 texts carry
conflicting labels).

Validation folds: the 31,577 distinct training comments are dealt into {c['n_folds']} folds, stratified by
label (within each label ordered by a SHA-1 of the normalized text), so every duplicate of a comment is in
one fold; each fold holds ~6,315 comments, 273-274 of them Extreme Hate. The recipe held out fold(s)
{c['cv_folds']} ({nval:,} comments), trained the same recipe on the rest, and chose on those predictions.

    @misc{{kaware2024indo, title={{Indo-HateSpeech}}, author={{Kaware, Pravin}}, year={{2024}},
          publisher={{Mendeley Data}}, version={{V1}}, doi={{10.17632/snc7mxpj6t.1}}}}

License of the data: CC BY 4.0.

## Recipe

`train/run.sh` (details in `train/README.md`), seed {rep['seed']}, {rep.get('torch_threads', 1)} torch thread(s):

{norm_text}1. Tokenizer: BPE with byte fallback on the training comments, Gemma 3 structure (normalizer
   `Replace(" " -> "▁")`, pre-tokenizer `Split(" ")`, decoders Replace/ByteFallback/Fuse,
   TemplateProcessing `<bos> $A`, `<pad>=0 <eos>=1 <bos>=2 <unk>=3 <start_of_turn>=4 <end_of_turn>=5`,
   bytes `<0x00>..<0xFF>` = 6..261); {rep['vocab']:,} tokens. No merge crosses a word boundary, so the
   15-id prompt head never depends on the comment (gemmaclf's prefix cache is exact).
2. Model: hidden {c['hidden_size']}, {c['num_hidden_layers']} layers (sliding window {c['sliding_window']} except the last, full),
   {c['num_attention_heads']} query heads, {c['num_key_value_heads']} KV head, head_dim {c['head_dim']}, intermediate {c['intermediate_size']}, vocab {c['vocab_size']}, tied embeddings.
3. Language-model phase: {c['lm_epochs']} epoch(s) over the distinct training comments, batch {c['batch_size']}, AdamW lr {c['lm_lr']:g}
   cosine, weight decay {c.get('weight_decay', 0.01):g}{', attention dropout %g' % c['attention_dropout'] if c.get('attention_dropout') else ''} (final train loss {rep['lm_loss']:.3f}).
4. SFT with TRL `SFTTrainer`, chat prompt-completion examples, loss on the answer
   (`{{label}}<end_of_turn>\\n`) only{', label smoothing %g' % c['label_smoothing'] if c['label_smoothing'] else ''}; {c['sft_epochs']} epochs, batch {c['batch_size']}, AdamW lr {c['sft_lr']:g} cosine, weight decay {c.get('weight_decay', 0.01):g}{', attention dropout %g' % c['attention_dropout'] if c.get('attention_dropout') else ''}.
   Each SFT epoch holds every Hate comment once, every Extreme Hate comment {c['extreme_oversample']} times and {nh_text};
   over the {c['sft_epochs']} epochs {sft['Not Hate']:,} / {sft['Hate']:,} / {sft['Extreme Hate']:,} Not Hate / Hate / Extreme Hate examples.
   Weight snapshots are kept at SFT epochs {', '.join(sorted(set(x for v in c['variants'].split('|') for x in v.split('+'))))}.
5. On the validation fold(s) (a model trained the same way without them): each candidate
   ({', '.join('`' + v + '`' for v in c['variants'].split('|'))}: a "+" averages those snapshots' weights) {bias_text};
   the candidate with the best smoothed macro-F1 (3x3-neighbourhood mean on the bias grid) wins
   (`{vspec}`: {vtext}); then the temperature minimising the negative log-likelihood of
   softmax((score + bias) / T) on those predictions: T = {rep['temperature']:.3f}.
6. The final model: steps 1-4 on all of train, candidate `{vspec}`, with that bias and temperature.
{head_recipe}
Each fold run's own table (the Gemma model alone; the bias is the one its fold run chose, with the rule
of its time):

{cv_table(rep)}

Validation ({nval:,} held-out distinct training comments) of what is served ({served}) with the chosen bias and T:
macro-F1 **{pooled['metrics']['macro']['f1']:.4f}**, Extreme Hate F1 **{eh(pooled['metrics']):.4f}**, ECE {pooled['calibration']['ece']:.4f}{spread}.
(These numbers choose the candidate, so they are slightly optimistic for that choice; dev below is untouched.)

Measured training time: {hms(fold_time + t['total_s'])} {steps}: validation fold run(s) {hms(fold_time)}{reused_text},
final model {hms(t['total_s'])} (tokenizer {t['tokenizer_s']:.0f} s, LM phase {hms(t['lm_phase_s'])}, SFT {hms(t['sft_phase_s'])},
dev evaluation {t['eval_s']:.0f} s). {wall}Command:

    {command}

## Results on dev (gemmaclf's scoring rule: {served}, computed with transformers)

| score bias (Hate, Extreme Hate) | distinct dev macro-F1 | Extreme Hate F1 | Hate F1 | Not Hate F1 |
|---|---|---|---|---|
{head_dev}| 0, 0 (none) | {m0['macro']['f1']:.4f} | {eh(m0):.4f} | {m0['per_class']['Hate']['f1']:.4f} | {m0['per_class']['Not Hate']['f1']:.4f} |
| {rep['bias'][1]:g}, {rep['bias'][2]:g} (chosen on validation) | {md['macro']['f1']:.4f} | {eh(md):.4f} | {md['per_class']['Hate']['f1']:.4f} | {md['per_class']['Not Hate']['f1']:.4f} |

{ev.fmt_table(md, 'Distinct dev comments')}
{ev.fmt_table(mr, 'Dev rows (duplicates counted)')}
![confusion matrices](confusion_dev.png)

## Calibration

Top-label expected calibration error (15 equal-width confidence bins) of gemmaclf's probabilities
softmax((score + bias) / T):

| | T | ECE | class-wise ECE | NLL |
|---|---|---|---|---|
| validation fold(s) (T fitted here) | {rep['temperature']:.3f} | {pooled['calibration']['ece']:.4f} | {pooled['calibration']['classwise_ece']:.4f} | {pooled['calibration']['nll']:.4f} |
| distinct dev comments, without temperature | 1 | {cal1['ece']:.4f} | {cal1['classwise_ece']:.4f} | {cal1['nll']:.4f} |
| distinct dev comments | {rep['temperature']:.3f} | **{cal['ece']:.4f}** | {cal['classwise_ece']:.4f} | {cal['nll']:.4f} |
| dev rows | {rep['temperature']:.3f} | {rep['dev_rows_calibration']['ece']:.4f} | {rep['dev_rows_calibration']['classwise_ece']:.4f} | {rep['dev_rows_calibration']['nll']:.4f} |

![reliability diagrams](reliability.png)
{notes}
## Limits

- Tiny model trained from scratch on 31.6k distinct comments from 17 Instagram posts of one period: it
  learns surface cues (slurs, names, emoji) of these posts, not a general notion of hate; expect lower
  quality on other topics, platforms or spelling, and do not use it for decisions about people without
  human review.
- Labels are noisy and the Hate / Extreme Hate boundary is subjective (see the confusion matrix:
  most errors are between neighbouring classes).
- The probabilities are calibrated on comments like the training ones; on other text they need not be.
- Comments longer than gemmaclf's `max_input_tokens` (default 512 tokens) are cut; training saw
  comments cut at 400 characters.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("model_dir")
    ap.add_argument("--command", default="train/run.sh --out train/out/full")
    ap.add_argument("--wall", default="", help="extra text after the timings, e.g. wall clock")
    ap.add_argument("--notes", default=None, help="markdown file appended after the results")
    a = ap.parse_args()
    rep = json.load(open(os.path.join(a.run_dir, "report.json")))
    os.makedirs(a.model_dir, exist_ok=True)
    for f in FILES + OPTIONAL:
        if f in FILES or os.path.exists(os.path.join(a.run_dir, "model", f)):
            shutil.copy(os.path.join(a.run_dir, "model", f), os.path.join(a.model_dir, f))
            # safetensors writes 0600; the server's user (postgres) must read the bundled files
            os.chmod(os.path.join(a.model_dir, f), 0o644)
        elif os.path.exists(os.path.join(a.model_dir, f)):
            os.remove(os.path.join(a.model_dir, f))
    fix_special_ids(a.model_dir)
    for png in ("confusion_dev.png", "reliability.png"):
        shutil.copy(os.path.join(a.run_dir, png), os.path.join(a.model_dir, png))
    rep["_gemmaclf_json"] = json.load(open(os.path.join(a.model_dir, "gemmaclf.json")))
    rep["_size_bytes"] = os.path.getsize(os.path.join(a.model_dir, "model.safetensors"))
    name = os.path.basename(os.path.normpath(a.model_dir))
    with open(os.path.join(a.model_dir, "README.md"), "w", encoding="utf-8") as f:
        notes = "\n" + open(a.notes, encoding="utf-8").read() if a.notes else ""
        f.write(card(rep, name, a.command, a.wall, notes))
    print("wrote", a.model_dir)


if __name__ == "__main__":
    main()
