#!/usr/bin/env python3
"""A nanoGPT-style PyTorch reference of zhcorpus's model and run: the same Llama-style
architecture (RMSNorm, half-split rotary embeddings, SwiGLU, tied embeddings), the same initial
weights (read from a zhcorpus checkpoint), the same batches (zhcorpus's window sampler,
reimplemented here), AdamW with the same groups and schedule, global-norm clipping.
Prints one JSON line per step: the first says the mode and the threads PyTorch runs with.

MODE:
  naive    explicit mask and softmax, RMSNorm by hand, AdamW's default (for-each) path: the
           script as first written
  sdpa     what PyTorch's documentation recommends for a decoder on the CPU:
           F.scaled_dot_product_attention(is_causal=True), F.rms_norm, AdamW(fused=True)
  compile  sdpa, and the model under torch.compile (inductor, C++ code for this CPU)

usage: reference.py RUN_DIR_WITH_STEP0_CHECKPOINT SHARD_DIR STEPS THREADS [MODE] (STEPS is also
the schedule's length, as zhcorpus's --max-steps; MODE defaults to sdpa)

Under torchrun (WORLD_SIZE > 1) it is PyTorch's data-parallel peer: DistributedDataParallel
over gloo (PyTorch's CPU backend, its default 25 MiB buckets), each rank reading its rows
of the global batch as zhcorpus's ranks do; rank 0 prints, with the loss averaged over the
ranks."""
import json, math, sys, time

import numpy as np
import torch
from safetensors.torch import load_file

run, shards, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "sdpa"
assert mode in ("naive", "sdpa", "compile"), mode
F = torch.nn.functional
torch.set_num_threads(threads)
import os
world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
if world > 1:
    import torch.distributed as dist
    dist.init_process_group("gloo")
cfg = json.load(open(f"{run}/config.json"))["run"]
mc, oc = cfg["model"], cfg["optim"]
M64 = (1 << 64) - 1


class Rng:  # zhcorpus's splitmix64
    def __init__(self, seed):
        self.s = (seed ^ 0x9E3779B97F4A7C15) & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return (self.next() * n) >> 64


manifest = json.load(open(f"{shards}/manifest.json"))
dtype = np.uint16 if manifest["dtype"] == "u16" else np.uint32
window = cfg["seq_len"] + 1
data, starts, total = [], [], 0
for s in manifest["shards"]:
    if s["split"] != "train":
        continue
    arr = np.memmap(f"{shards}/{s['file']}", dtype=dtype, mode="r", offset=1024)
    data.append(arr)
    total += max(0, len(arr) - (window - 1))
    starts.append(total)


def get_batch(k):
    rng = Rng(cfg["seed"] ^ ((k * 0xA0761D6478BD642F) & M64))
    rows = []
    for _ in range(cfg["batch_size"]):
        pos = rng.below(total)
        i = next(j for j, s in enumerate(starts) if s > pos)
        off = pos - (starts[i - 1] if i else 0)
        rows.append(np.asarray(data[i][off:off + window], dtype=np.int64))
    b = torch.from_numpy(np.stack(rows))
    per = cfg["batch_size"] // world
    b = b[rank * per:(rank + 1) * per]
    return b[:, :-1], b[:, 1:]


def rms_norm(x, w, eps):
    if mode != "naive":
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Model(torch.nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v.float()) for k, v in weights.items()})
        hd = mc["d_model"] // mc["n_head"]
        inv = 1.0 / (mc["rope_theta"] ** (torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd))
        ang = torch.arange(mc["max_seq_len"], dtype=torch.float64)[:, None] * inv[None]
        self.cos, self.sin = ang.cos().float(), ang.sin().float()

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def rope(self, x, t):
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        c, s = self.cos[:t], self.sin[:t]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    def forward(self, ids):
        b, t = ids.shape
        nh, d = mc["n_head"], mc["d_model"]
        emb = self.w("model.embed_tokens.weight")
        x = emb[ids]
        mask = torch.full((t, t), float("-inf")).triu(1) if mode == "naive" else None
        for i in range(mc["n_layer"]):
            L = lambda n: self.w(f"model.layers.{i}.{n}")
            h = rms_norm(x, L("input_layernorm.weight"), mc["norm_eps"])
            q, k, v = (h @ L(f"self_attn.{n}_proj.weight").T for n in "qkv")
            q, k, v = (z.view(b, t, nh, d // nh).transpose(1, 2) for z in (q, k, v))
            q, k = self.rope(q, t), self.rope(k, t)
            if mode == "naive":
                att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // nh) + mask, -1)
                y = att @ v
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(b, t, d)
            x = x + y @ L("self_attn.o_proj.weight").T
            h = rms_norm(x, L("post_attention_layernorm.weight"), mc["norm_eps"])
            g = h @ L("mlp.gate_proj.weight").T
            x = x + (torch.nn.functional.silu(g) * (h @ L("mlp.up_proj.weight").T)) @ L("mlp.down_proj.weight").T
        x = rms_norm(x, self.w("model.norm.weight"), mc["norm_eps"])
        head = emb if mc["tied_embeddings"] else self.w("lm_head.weight")
        return x @ head.T


model = Model(load_file(f"{run}/checkpoint/model.safetensors"))
decay = [p for n, p in model.p.items() if not n.endswith("norm__weight")]
no_decay = [p for n, p in model.p.items() if n.endswith("norm__weight")]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": oc["weight_decay"]},
                         {"params": no_decay, "weight_decay": 0.0}],
                        lr=oc["lr"], betas=(oc["beta1"], oc["beta2"]), eps=oc["eps"],
                        **({} if mode == "naive" else {"fused": True}))
forward = torch.compile(model) if mode == "compile" else model
if world > 1:
    from torch.nn.parallel import DistributedDataParallel

    # DDP as its documentation sets it up: its default hook averages each bucket with an
    # asynchronous all-reduce that overlaps the rest of the backward pass
    forward = DistributedDataParallel(model)
if rank == 0:
    print(json.dumps({"mode": mode, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "ranks": world, "cpu_capability": torch.backends.cpu.get_cpu_capability()}),
          flush=True)


def lr_at(step):
    if step < oc["warmup_steps"]:
        return oc["lr"] * (step + 1) / oc["warmup_steps"]
    span = max(1, steps - oc["warmup_steps"])
    p = min(1.0, (step - oc["warmup_steps"]) / span)
    return oc["min_lr"] + 0.5 * (1 + math.cos(math.pi * p)) * (oc["lr"] - oc["min_lr"])


tokens_per_step = cfg["seq_len"] * cfg["batch_size"] * cfg["grad_accum"]
rates = []
for step in range(steps):
    t0 = time.perf_counter()
    for g in opt.param_groups:
        g["lr"] = lr_at(step)
    opt.zero_grad(set_to_none=True)
    total_loss = 0.0
    for micro in range(cfg["grad_accum"]):
        x, y = get_batch(step * cfg["grad_accum"] + micro)
        logits = forward(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        (loss / cfg["grad_accum"]).backward()
        total_loss += loss.item() / cfg["grad_accum"]
    if oc["grad_clip"] > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), oc["grad_clip"])
    opt.step()
    line = {"step": step + 1, "loss": total_loss}
    if world > 1:
        mean = torch.tensor([total_loss / world])
        dist.all_reduce(mean)
        line["loss"] = mean.item()
    rates.append(tokens_per_step / (time.perf_counter() - t0))
    line["tokens_per_s"] = rates[-1]
    if rank == 0:
        print(json.dumps(line), flush=True)
if world > 1:
    dist.destroy_process_group()
