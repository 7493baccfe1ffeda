"""Official PT-L2P training-step speed on CPU or a GPU, in float32 or bfloat16 autocast (benchmark, not a test).

A measurement script, not a test; it runs the reference beside this library and is never part of a test run.
Run it in an environment with timm 0.6.7 and a checkout of the PT-L2P sources (JH-LEE-KR/l2p-pytorch @ f7bc994):
    python tools/parity/l2p_pytorch_step.py --ref <l2p-pytorch checkout> [--steps 3] [--threads 2] [--precision bf16]
and compare with ``python -m pecft_lib.bench --methods L2P --scales paper --threads 2 --precision fp32 bf16``.
``--precision bf16`` runs both forward passes (query and prompted) under ``torch.autocast(device, bfloat16)`` and the
loss on float32 logits, as the bench's bf16 rows do; PT-L2P itself has no such option. ``--device cuda`` runs on a GPU.
``--json FILE`` adds the measurement as a row to FILE (created if missing; a row of the same precision, device,
batch and threads is replaced), the file the book's performance appendix reads beside the bench's.
One step = engine.py train_one_epoch's body: original_model(x)['pre_logits'] under no_grad, prompted
forward, train-mask index_fill, CE - 0.1*reduce_sim, zero_grad, backward, clip_grad_norm_(1.0), Adam step
(timm create_optimizer: adam, lr 0.03*16/256, wd 0, eps 1e-8). ViT-B/16 224 px, random weights, CIFAR-100
config (M=10, L=5, N=5, head 'prompt', batchwise_prompt=True, 100 classes, task 0 = classes 0..9),
freeze list blocks/patch_embed/cls_token/norm/pos_embed, batch 16, 1 warm-up + --steps timed steps.
"""
import argparse, json, os, platform, sys, time
import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--ref", required=True, help="a checkout of JH-LEE-KR/l2p-pytorch")
p.add_argument("--steps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
p.add_argument("--device", default="cpu")
p.add_argument("--json", default=None, help="add the row to this JSON file")
a = p.parse_args()
sys.path.insert(0, a.ref)
torch.set_num_threads(a.threads)
from vision_transformer import VisionTransformer  # noqa: E402  (PT-L2P's own module)
from timm.optim import create_optimizer_v2  # noqa: E402

torch.manual_seed(42)
ARCH = dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=100)
original_model = VisionTransformer(**ARCH)
model = VisionTransformer(**ARCH, prompt_length=5, embedding_key="cls", prompt_init="uniform", prompt_pool=True,
                          prompt_key=True, pool_size=10, top_k=5, batchwise_prompt=True, prompt_key_init="uniform",
                          head_type="prompt", use_prompt_mask=False)
for q in original_model.parameters():
    q.requires_grad = False
for n, q in model.named_parameters():
    if n.startswith(("blocks", "patch_embed", "cls_token", "norm", "pos_embed")):
        q.requires_grad = False
optimizer = create_optimizer_v2(model, "adam", lr=0.03 * a.batch / 256, weight_decay=0.0, eps=1e-8,
                                betas=(0.9, 0.999))
criterion = torch.nn.CrossEntropyLoss()
model.train(); original_model.eval()
model.to(a.device); original_model.to(a.device)
g = torch.Generator().manual_seed(0)
x = torch.rand(a.batch, 3, 224, 224, generator=g).to(a.device)
y = torch.randint(0, 10, (a.batch,), generator=g).to(a.device)
not_mask = torch.tensor(np.setdiff1d(np.arange(100), np.arange(10)), dtype=torch.int64, device=a.device)
autocast = torch.autocast(torch.device(a.device).type, dtype=torch.bfloat16, enabled=a.precision == "bf16")


def step():
    with torch.no_grad(), autocast:
        cls_features = original_model(x)["pre_logits"]
    with autocast:
        output = model(x, task_id=0, cls_features=cls_features, train=True)
    logits = output["logits"].float().index_fill(dim=1, index=not_mask, value=float("-inf"))
    loss = criterion(logits, y) - 0.1 * output["reduce_sim"].float()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    return loss.item()


print("load before:", os.getloadavg(), "threads:", torch.get_num_threads(), "torch", torch.__version__,
      "precision:", a.precision, "device:", a.device)
cpuinfo = open("/proc/cpuinfo").read().splitlines() if os.path.exists("/proc/cpuinfo") else []
flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
print("CPU bfloat16-relevant flags:", [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in flags])
t = time.perf_counter(); step(); print(f"warm-up {time.perf_counter() - t:.2f}s")
times, cpu = [], []
for _ in range(a.steps):
    t, c = time.perf_counter(), time.process_time()
    step()
    times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
print("step wall times", [f"{s:.2f}" for s in times], "process CPU times", [f"{s:.2f}" for s in cpu])
print(f"samples/s: mean-time {a.batch * len(times) / sum(times):.3f}, best-step {a.batch / min(times):.3f}")
# on a busy machine wall time overstates the step; CPU time / threads is an estimate of the step on an idle
# machine (OpenMP spin-waiting inflates CPU time, so this estimate is on the slow side)
print(f"CPU-time estimate for an idle machine: {a.batch / (sum(cpu) / len(cpu) / a.threads):.3f} samples/s")
print("load after:", os.getloadavg())
if a.json:
    cpu_name = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                    platform.processor())
    row = {"method": "PT-L2P (official)", "scale": "paper", "precision": a.precision, "device": a.device,
           "batch_size": a.batch, "threads": a.threads, "samples_per_second": a.batch * len(times) / sum(times),
           "step_ms": 1000 * sum(times) / len(times), "cpu": cpu_name,
           "cpu_flags": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16") if f in flags],
           "torch": torch.__version__, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rows = json.load(open(a.json))["rows"] if os.path.exists(a.json) else []
    same = ("precision", "device", "batch_size", "threads")
    rows = [r for r in rows if any(r[k] != row[k] for k in same)] + [row]
    with open(a.json, "w") as handle:
        json.dump({"rows": rows}, handle, indent=1)
    print("written to", a.json)
