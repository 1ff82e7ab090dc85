#!/usr/bin/env python
"""Memory and speed of siu_nb at the 7B shapes on one GPU (bf16 and 4-bit), plus correctness checks; `--smoke` runs the
same code at tiny shapes on CPU (CI) so the script never rots.

    python tools/gpu_check.py --out nbs/gpu_results.json   # on one GPU, about 5-8 minutes
    python tools/gpu_check.py --smoke --out /tmp/gpu_smoke.json   # CPU, tiny shapes, under a minute

Models are built from configs with random weights at the real shapes (no hub). LLaVA-1.5 goes through siu_nb's public API
(`build_forget_set`, `Unlearner`/`reference_cache`/`method_loss`/`encode` inside it, `quantize_4bit`, `generate`). Qwen2.5-VL is
not a siu_nb family yet: it is built with plain transformers, its batches by hand, LoRA with peft directly, and the loss with
`siu_nb.loss.method_loss`; the fields that need the rest of siu_nb are null with a reason. Written as strict JSON (`--out`).
See nbs/gpu.ipynb for what each field means.
"""
import argparse, copy, gc, platform, resource, statistics, sys, tempfile, time
from dataclasses import replace
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from siu_nb.core import versions, to_json, atomic_write, quiet_known_noise
from siu_nb.testing import tiny_mllm, train_tokenizer, tiny_processor
from siu_nb.models import bnb_4bit_config, quantize_4bit, quantized_modules, full_precision_modules
try: from siu_nb.models import lora_targets  # every linear layer of the language model, from the model's structure
except ImportError:  # an older siu_nb
    def lora_targets(model): return r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
from siu_nb.generate import generate
from siu_nb.targets import ForgetRequest, build_forget_set
from siu_nb.encode import encode
from siu_nb.loss import method_loss
from siu_nb.train import Unlearner, UnlearnConfig, OneProcess, reference_cache
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

quiet_known_noise()
BF16 = torch.bfloat16
QWEN_VOCAB = 152064  # Qwen2.5-VL's logits width (151,936 tokenizer entries, padded)

# ---------------------------------------------------------------------------------------------- shapes
def llava_config(tok, smoke):
    "LLaVA-1.5-7B's shapes (CLIP ViT-L/14 at 336 px, Vicuna-7B, 32064 logits), or a tiny one; reads the offline tokenizer `tok`."
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
    if smoke: return tiny_mllm(tokenizer=tok)[0].config
    vc = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                          image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    tc = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5, pad_token_id=tok.pad_token_id,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return LlavaConfig(vision_config=vc, text_config=tc, image_token_index=tok.image_token_id, vision_feature_layer=-2,
                       vision_feature_select_strategy="default", projector_hidden_act="gelu", pad_token_id=tok.pad_token_id)

def qwen_config(smoke):
    "Qwen2.5-VL-7B's shapes (32-block ViT 1280 wide, 28-layer 3584-wide GQA decoder, 152064 logits), or a tiny one."
    from transformers import Qwen2_5_VLConfig
    if smoke:
        v = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, fullatt_block_indexes=[1])
        t = dict(vocab_size=QWEN_VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[2, 3, 3]))
    else:
        v = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, fullatt_block_indexes=[7, 15, 23, 31])
        t = dict(vocab_size=QWEN_VOCAB, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                 num_key_value_heads=4, rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[16, 24, 24]))
    t.update(max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=False)
    v.update(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112, in_channels=3)
    return Qwen2_5_VLConfig(text_config=t, vision_config=v, image_token_id=151655, vision_start_token_id=151652,
                            vision_end_token_id=151653)

def build(config, dev, dtype):
    "A randomly initialised model of `config`, built directly on `dev` in `dtype`, in eval mode."
    from transformers import AutoModelForImageTextToText
    torch.manual_seed(0)
    with torch.device(dev): return AutoModelForImageTextToText.from_config(config, dtype=dtype).eval()

def to_4bit(model, dev):
    "A 4-bit copy of a model without a siu_nb processor (Qwen): saved, reloaded with `bnb_4bit_config`."
    from transformers import AutoModelForImageTextToText
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        return AutoModelForImageTextToText.from_pretrained(d, quantization_config=bnb_4bit_config(model, BF16), dtype=BF16,
                                                           device_map={"": str(dev)}).eval()

# ---------------------------------------------------------------------------------------------- measuring
def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()

def mem_reset(dev):
    gc.collect()
    if dev.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

def peak_gb(dev):
    "Peak GPU memory allocated since `mem_reset` (CUDA), or the process's peak resident memory (CPU: a coarse stand-in)."
    if dev.type == "cuda": return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def timed(dev, fn):
    sync(dev); t = time.perf_counter(); out = fn(); sync(dev); return time.perf_counter() - t, out

def rows_mb(rows): return sum(r.numel() * r.element_size() for r in rows) / 2**20

def four_bit_check(model):
    "Where the 4-bit layers are: all inside the language model, none in the vision tower, projector or head."
    four, keep = quantized_modules(model), full_precision_modules(model)
    outside = [n for n in four if any(n == k or n.startswith(k + ".") for k in keep)]
    return dict(n_4bit=len(four), full_precision=keep, quantized_outside_lm=outside, ok=bool(four) and not outside)

def forget_set(n_concepts=1):
    "16 SIU samples per concept around one 336 px image."
    rng, first, last = np.random.default_rng(0), "Emma Liam Olivia Noah Ava".split(), "King Scott Brown Clark".split()
    reqs = [ForgetRequest(f"{first[i % 5]} {last[i // 5 % 4]}", Image.fromarray(rng.integers(0, 255, (336, 336, 3), dtype=np.uint8)),
                          substitute="Jacob Campbell", facts=[("Who is this person?", "A chef from Lima.")],
                          other_facts=[("Who is Owen Hall?", "A pilot from Oslo.")]) for i in range(n_concepts)]
    return build_forget_set(reqs if n_concepts > 1 else reqs[0])

def interleaved(dev, steps, pairs):
    "Time `pairs` SIU/CE step pairs on the same batches (after one warm-up pair, order alternating); `steps(k, method)` runs step k."
    for m in ("siu", "ce"): steps(1, m)
    t, loss = dict(siu=[], ce=[]), None
    for k in range(2, pairs + 2):
        for m in (("siu", "ce") if k % 2 else ("ce", "siu")):
            s, out = timed(dev, lambda: steps(k, m)); t[m].append(s)
            if m == "siu": loss = out
    return dict(step_s=statistics.median(t["siu"]), ce_step_s=statistics.median(t["ce"]), loss=loss,
                siu_over_ce=statistics.median(s / c for s, c in zip(t["siu"], t["ce"])), siu_steps_s=t["siu"], ce_steps_s=t["ce"])

def gen_speed(dev, model, run_generate, n_new):
    "Batched greedy tokens per second: every answer is forced to `n_new` tokens (min_new_tokens) so the count is exact."
    gc_ = (model.get_base_model() if hasattr(model, "get_base_model") else model).generation_config
    old = gc_.min_new_tokens
    try:
        gc_.min_new_tokens = 2; run_generate(2)
        gc_.min_new_tokens = n_new
        s, (n_seq, _) = timed(dev, lambda: run_generate(n_new))
    finally: gc_.min_new_tokens = old
    return n_seq * n_new / s

# ---------------------------------------------------------------------------------------------- LLaVA through siu_nb
def llava_run(model, processor, samples, dev, quant, a):
    "Our SIU (reference = adapters disabled, cached once) through `Unlearner`: memory, SIU vs CE steps, cache, generation."
    mem_reset(dev)
    cfg = UnlearnConfig(steps=2 * (a.pairs + 2), batch_size=4, r=128, lora_alpha=256, lr=3e-4, bf16=dev.type == "cuda")
    u = Unlearner(model, processor, samples, cfg, procs=OneProcess())
    u.adapt(); cache_s = timed(dev, u.cache_reference)[0]; u.make_optimizer(); u.model.train()
    siu_cfg = u.config; ce_cfg = replace(siu_cfg, method="po")  # PO on the same samples: the answer cross-entropy alone
    def steps(k, m): u.step, u.config = k, (siu_cfg if m == "siu" else ce_cfg); u.one_step(); return u.loss
    t = interleaved(dev, steps, a.pairs)
    u.config = siu_cfg
    out = dict(family="llava", shape=a.llava_shape, quant=quant, peak_mem_gb=peak_gb(dev), **t,
               ref_cache_mb=rows_mb(u.cache["rows"]), ref_cache_s=cache_s, ref_cache_dtype=str(u.cache["rows"][0].dtype),
               kl_positions=sum(len(r) for r in u.cache["rows"]), seq_len=int(encode(processor, samples[:4])["input_ids"].shape[1]))
    prompts = [s.question for s in samples[:4]]
    def run_gen(n): return len(generate(u.model, processor, [samples[0].image] * 4, prompts, max_new_tokens=n, batch_size=4)), None
    out["gen_tokens_per_s"] = gen_speed(dev, u.model, run_gen, a.new_tokens)
    del u.opt, u.sched
    return u.model, out

def second_copy_step(model, processor, samples, dev, a):
    "The authors' variant for memory: LoRA on `model`, the reference a second full copy whose logits are computed every step."
    mem_reset(dev)
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    pm = get_peft_model(model, LoraConfig(r=128, lora_alpha=256, lora_dropout=0.05, target_modules=lora_targets(model)))
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.0)
    pm.train(); times = []
    for k in range(2):
        batch = [samples[(4 * k + j) % len(samples)] for j in range(4)]
        def step():
            b = encode(processor, batch, "answer", dev)
            x = {n: v for n, v in b.items() if n not in ("labels", "kl_mask")}
            x["pixel_values"] = x["pixel_values"].to(BF16)
            with torch.autocast(dev.type, dtype=BF16, enabled=dev.type == "cuda"):
                with torch.no_grad(): rl = ref(**x).logits
                logits = pm(**x).logits
            km = b["kl_mask"][:, 1:].bool()
            rows = torch.cat([F.log_softmax(rl[j, :-1][km[j]].float(), -1) for j in range(len(batch))])
            tg = torch.tensor([s.target for s in batch], device=dev)
            loss, _ = method_loss("siu", logits, b, tg, rows, None)
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); return loss.item()
        times.append(timed(dev, step)[0])
    out = dict(second_copy_peak_mem_gb=peak_gb(dev), second_copy_step_s=times[-1])
    ref = opt = None; pm.unload(); mem_reset(dev)  # noqa: F841 (frees them)
    return out

def cache_20(model, processor, dev, a):
    "The reference cache of 20 concepts at once (320 samples) through `reference_cache`, measured; scaled to Qwen's vocabulary."
    samples = forget_set(a.concepts)
    mem_reset(dev); base = torch.cuda.memory_allocated() if dev.type == "cuda" else 0
    s, c = timed(dev, lambda: reference_cache(model, processor, samples, kl_on="answer", batch_size=4, bf16=dev.type == "cuda"))
    held = (torch.cuda.memory_allocated() - base) / 2**20 if dev.type == "cuda" else rows_mb(c["rows"])
    pos, V = sum(len(r) for r in c["rows"]), c["rows"][0].shape[-1]
    out = dict(concepts=a.concepts, samples=len(samples), kl_positions=pos, vocab=V, measured_mb=rows_mb(c["rows"]),
               measured_held_on_device_mb=held, seconds=s, device_of_rows=str(c["rows"][0].device),
               qwen_vocab=QWEN_VOCAB, qwen_fp32_mb=pos * QWEN_VOCAB * 4 / 2**20, qwen_bf16_mb=pos * QWEN_VOCAB * 2 / 2**20,
               note="rows are fp32, kept on the CPU and moved to the model's device per micro-batch (train.reference_cache); the tiny offline tokenizer spells answers in more "
                    "tokens than LLaMA's or Qwen's, so real caches are smaller by that ratio")
    del c; mem_reset(dev)
    return out

def llava_all(dev, a):
    tok = train_tokenizer()
    processor = tiny_processor(tok, image_size=336 if not a.smoke else 32, patch_size=14 if not a.smoke else 8)
    samples, runs = forget_set(), []
    model = build(llava_config(tok, a.smoke), dev, BF16)
    params_b = sum(p.numel() for p in model.parameters()) / 1e9
    q4 = quantize_4bit(model, processor)           # the library's 4-bit copy (NF4, language model only)
    chk = four_bit_check(q4)
    if dev.type == "cuda": model.to("cpu")        # measure the 4-bit run alone on the GPU
    _, r4 = llava_run(q4, processor, samples, dev, "4bit", a); runs.append(r4)
    r4.update(four_bit_check=chk, second_copy_peak_mem_gb=None, second_copy_step_s=None,
              null_reasons=dict(second_copy_peak_mem_gb="measured on the bf16 run: the authors' reference is a full-precision copy"))
    del q4, _; mem_reset(dev); model.to(dev)
    sc = second_copy_step(model, processor, samples, dev, a)
    pm, r16 = llava_run(model, processor, samples, dev, "bf16", a)
    r16.update(sc, four_bit_check=None, null_reasons=dict(four_bit_check="not a 4-bit run")); runs.append(r16)
    extra = cache_20(pm, processor, dev, a)
    del pm, model; mem_reset(dev)
    for r in runs: r["params_b"] = params_b
    return runs, extra

# ---------------------------------------------------------------------------------------------- Qwen2.5-VL with plain transformers
def qwen_batch(config, dev, seq_text, n_answer, grid=24, batch=4, seed=0):
    "A hand-built batch: `<|vision_start|>`, the image tokens of a `grid`x`grid` patch grid (merged 2x2), text, an answer."
    g, vc = torch.Generator().manual_seed(seed), config.vision_config
    n_img = grid * grid // vc.spatial_merge_size ** 2
    text = torch.randint(1000, 150000, (batch, seq_text), generator=g)
    ids = torch.cat([torch.full((batch, 1), config.vision_start_token_id), torch.full((batch, n_img), config.image_token_id),
                     torch.full((batch, 1), config.vision_end_token_id), text], 1)
    labels = torch.full_like(ids, -100); labels[:, -n_answer:] = ids[:, -n_answer:]
    kl = torch.zeros_like(ids); kl[:, -n_answer:] = 1
    px = torch.randn(batch * grid * grid, vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2, generator=g)
    b = dict(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=px, image_grid_thw=torch.tensor([[1, grid, grid]] * batch),
             labels=labels, kl_mask=kl)
    return {k: v.to(dev) for k, v in b.items()}

def qwen_run(model, dev, quant, a):
    "LoRA r=128 on the decoder (peft directly), reference rows cached once with adapters off, SIU vs CE by `method_loss`."
    mem_reset(dev)
    if quant == "4bit": model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    torch.manual_seed(0)
    pm = get_peft_model(model, LoraConfig(r=128, lora_alpha=256, lora_dropout=0.05, target_modules=lora_targets(model)))
    batches = [qwen_batch(model.config, dev, a.qwen_text, a.qwen_answer, a.qwen_grid, seed=k) for k in range(4)]
    dt = BF16
    def fwd(m, b):
        x = {k: v for k, v in b.items() if k not in ("labels", "kl_mask")}; x["pixel_values"] = x["pixel_values"].to(dt)
        with torch.autocast(dev.type, dtype=BF16, enabled=dev.type == "cuda"): return m(**x).logits
    def ref_rows(b):
        with torch.no_grad(), pm.disable_adapter(): lg = fwd(pm, b)
        km = b["kl_mask"][:, 1:].bool()
        return torch.cat([F.log_softmax(lg[j, :-1][km[j]].float(), -1) for j in range(len(lg))])
    # in train mode (no dropout without adapters): on AVX-512 CPUs bitsandbytes packs 4-bit weights for inference on the
    # first eval-mode forward, and the packed path has no autograd (biased layers, as Qwen's q/k/v, then fail in training)
    pm.train(); cache_s, rows = timed(dev, lambda: [ref_rows(b) for b in batches])
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.0)
    tg = torch.tensor([1, 2, 3, 4], device=dev)
    def steps(k, m):
        b = batches[k % 4]
        loss, _ = method_loss("siu" if m == "siu" else "po", fwd(pm, b), b, tg, rows[k % 4], None)
        loss.backward(); torch.nn.utils.clip_grad_norm_([p for p in pm.parameters() if p.requires_grad], 1.0)
        opt.step(); opt.zero_grad(set_to_none=True); return loss.item()
    t = interleaved(dev, steps, a.pairs)
    out = dict(family="qwen2_5_vl", shape=a.qwen_shape, quant=quant, peak_mem_gb=peak_gb(dev), **t,
               ref_cache_mb=rows_mb(rows), ref_cache_s=cache_s, ref_cache_dtype=str(rows[0].dtype), kl_positions=sum(len(r) for r in rows),
               seq_len=int(batches[0]["input_ids"].shape[1]),
               four_bit_check=None, second_copy_peak_mem_gb=None, second_copy_step_s=None,
               null_reasons=dict(second_copy_peak_mem_gb="measured on the LLaVA bf16 run only", four_bit_check="not a 4-bit run"),
               how="not a siu_nb family yet: plain transformers + peft; hand-built batches (no Qwen2VLProcessor: it needs torchvision); "
                   "siu_nb.loss.method_loss for the SIU and CE losses; encode/unlearn/generate not used")
    b = batches[0]
    def run_gen(n):
        x = {k: v for k, v in b.items() if k not in ("labels", "kl_mask")}; x["pixel_values"] = x["pixel_values"].to(dt)
        pm.eval()
        with torch.inference_mode(): pm.generate(**x, max_new_tokens=n, do_sample=False, pad_token_id=0, eos_token_id=151645)
        return len(b["input_ids"]), None
    out["gen_tokens_per_s"] = gen_speed(dev, pm, run_gen, a.new_tokens)
    out["gen_via"] = "model.generate directly (siu_nb.generate needs a processor)"
    opt = rows = batches = None; pm.unload(); mem_reset(dev)  # noqa: F841 (frees them)
    return out

def qwen_all(dev, a):
    model = build(qwen_config(a.smoke), dev, BF16)
    params_b = sum(p.numel() for p in model.parameters()) / 1e9
    q4 = to_4bit(model, dev); chk = four_bit_check(q4)
    if dev.type == "cuda": model.to("cpu")
    r4 = qwen_run(q4, dev, "4bit", a); r4["four_bit_check"] = chk; r4["null_reasons"].pop("four_bit_check")
    del q4; mem_reset(dev); model.to(dev)
    r16 = qwen_run(model, dev, "bf16", a)
    del model; mem_reset(dev)
    for r in (r4, r16): r["params_b"] = params_b
    return [r4, r16]

# ---------------------------------------------------------------------------------------------- correctness
def bf16_matches_fp32(dev, loss_rtol=2e-2, min_cos=0.99):
    "One SIU micro-step (forward, DMK against the cached reference, backward) on the tiny model: bf16 autocast vs fp32."
    samples = forget_set(); res = {}
    for bf16 in (False, True):
        model, processor = tiny_mllm(seed=0); model.to(dev)
        u = Unlearner(model, processor, samples, UnlearnConfig(steps=1, r=8, lora_alpha=16, lora_dropout=0.0, bf16=bf16), procs=OneProcess())
        u.prepare(); u.model.train()
        loss, parts = u.micro_step(u.plan[0][0], 1)
        res[bf16] = (loss, torch.cat([p.grad.flatten().float().cpu() for p in u.params]))
    (l32, g32), (l16, g16) = res[False], res[True]
    rel, cos = abs(l16 - l32) / abs(l32), F.cosine_similarity(g16, g32, 0).item()
    return dict(loss_fp32=l32, loss_bf16=l16, loss_rel_diff=rel, grad_cosine=cos, loss_rtol=loss_rtol, min_grad_cosine=min_cos,
                ok=rel <= loss_rtol and cos >= min_cos)

# ---------------------------------------------------------------------------------------------- main
def device_info(dev):
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        return dict(type="cuda", name=p.name, total_gb=p.total_memory / 2**30, capability=f"{p.major}.{p.minor}", cuda=torch.version.cuda)
    return dict(type="cpu", name=platform.processor() or platform.machine(), threads=torch.get_num_threads())

REQUIRED = ("peak_mem_gb", "step_s", "siu_over_ce", "ref_cache_mb", "gen_tokens_per_s", "params_b")

def sane(x, path="result"):
    "Every number finite and every measured quantity positive."
    if isinstance(x, dict):
        for k, v in x.items():
            if k in ("quantized_outside_lm",): assert v == [], f"{path}.{k}: 4-bit layers outside the language model: {v}"
            sane(v, f"{path}.{k}")
    elif isinstance(x, list): [sane(v, f"{path}[{i}]") for i, v in enumerate(x)]
    elif isinstance(x, float): assert np.isfinite(x) and x > 0 or path.endswith(("loss_rel_diff", "loss")), f"{path} = {x}"

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file to write (e.g. nbs/gpu_results.json)")
    p.add_argument("--smoke", action="store_true", help="tiny shapes on CPU: the same code paths, for CI")
    p.add_argument("--only", choices=["llava", "qwen"], help="one family only")
    p.add_argument("--pairs", type=int, default=None, help="timed SIU/CE step pairs per run (default 4 on GPU, 2 with --smoke)")
    a = p.parse_args(argv)
    if not a.smoke and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible: run it on a GPU machine, or pass --smoke for the CPU check at tiny shapes.")
    try: import bitsandbytes  # noqa: F401
    except ImportError: sys.exit("gpu_check: 4-bit needs bitsandbytes: pip install 'siu_nb[quant]'.")
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    t0, dev = time.perf_counter(), torch.device("cpu" if a.smoke else "cuda")
    if a.smoke: torch.set_num_threads(1)
    a.new_tokens, a.concepts = (8, 20) if a.smoke else (32, 20)
    a.pairs = a.pairs or (2 if a.smoke else 4)
    if a.pairs < 1: sys.exit("gpu_check: --pairs must be at least 1.")
    a.llava_shape, a.qwen_shape = ("tiny-llava", "tiny-qwen2.5-vl") if a.smoke else ("llava-1.5-7b", "qwen2.5-vl-7b")
    a.qwen_grid, a.qwen_text, a.qwen_answer = (4, 40, 12) if a.smoke else (24, 40, 12)  # 336 px: 24x24 patches -> 144 tokens
    settings = dict(smoke=a.smoke, lora_r=128, lora_alpha=256, batch_size=4, forget_samples=16, image_px=336, timed_pairs=a.pairs,
                    warmup_pairs=1, gen_new_tokens=a.new_tokens, gen_batch=4, autocast_bf16=dev.type == "cuda",
                    qwen_grid=a.qwen_grid, qwen_text_tokens=a.qwen_text, qwen_answer_tokens=a.qwen_answer,
                    ce_step="method 'po' on the same samples and batches: the answer cross-entropy alone (no DMK, no reference)",
                    peak_mem="torch.cuda.max_memory_allocated per run" if dev.type == "cuda" else "process max RSS (CPU; cumulative)")
    res = dict(device=device_info(dev), versions=versions(), settings=settings, checks={}, runs=[], errors=[])
    def stage(name, fn):
        "Run one stage; its error is recorded (the other stages still run) and the results so far are written."
        print(f"[{time.perf_counter() - t0:6.0f} s] {name}", file=sys.stderr, flush=True)
        try: fn()
        except Exception as e:
            res["errors"].append(dict(stage=name, error=f"{type(e).__name__}: {e}"[:2000])); mem_reset(dev)
        res["seconds"] = time.perf_counter() - t0
        atomic_write(a.out, to_json(res) + "\n")
    def llava():
        runs, res["ref_cache_20_concepts"] = llava_all(dev, a); res["runs"] += runs
    stage("bf16 vs fp32 on the tiny model", lambda: res["checks"].update(bf16_vs_fp32=bf16_matches_fp32(dev)))
    if a.only in (None, "llava"): stage(f"{a.llava_shape}: 4-bit, second copy, bf16, 20-concept cache", llava)
    if a.only in (None, "qwen"): stage(f"{a.qwen_shape}: 4-bit, bf16", lambda: res["runs"].extend(qwen_all(dev, a)))
    for r in res["runs"]: print(f"{r['shape']:>16} {r['quant']:>5}: peak {r['peak_mem_gb']:.2f} GB, SIU step {r['step_s']:.3f} s "
                                f"({r['siu_over_ce']:.2f}x CE), cache {r['ref_cache_mb']:.1f} MB, {r['gen_tokens_per_s']:.0f} tok/s")
    print(f"wrote {a.out} in {res['seconds']:.0f} s")
    if res["errors"]: sys.exit("gpu_check failed:\n" + "\n".join(f"  {e['stage']}: {e['error']}" for e in res["errors"]))
    sane(res)
    for r in res["runs"]:
        bad = [k for k in REQUIRED if not isinstance(r.get(k), float)]
        if bad: sys.exit(f"gpu_check: run {r['shape']} {r['quant']} lacks {bad}")
    if len(res["runs"]) != 2 * ((a.only in (None, "llava")) + (a.only in (None, "qwen"))): sys.exit("gpu_check: runs are missing")
    if not res["checks"]["bf16_vs_fp32"]["ok"]: sys.exit(f"gpu_check: bf16 does not match fp32: {res['checks']['bf16_vs_fp32']}")
    if not all(r["four_bit_check"]["ok"] for r in res["runs"] if r["quant"] == "4bit"): sys.exit("gpu_check: 4-bit layers outside the language model")

if __name__ == "__main__": main()
