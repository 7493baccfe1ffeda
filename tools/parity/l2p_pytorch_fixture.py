"""Regenerates tests/data/l2p_pytorch_reference.pt: a tiny PT-L2P checkpoint and PT-L2P's own outputs.

Needs the PT-L2P sources (JH-LEE-KR/l2p-pytorch @ f7bc994) and timm 0.6.7:
    python tools/parity/l2p_pytorch_fixture.py <l2p-pytorch checkout> tests/data/l2p_pytorch_reference.pt
ViT: img 8, patch 4, 3 channels, width 16, depth 2, 2 heads; pool M=4, L_p=2, N=2, 5 classes. Weights are
random, perturbed so no tensor is trivial; the prompt rows of pos_embed are copies of the [CLS] row (what
PT-L2P's pretrained loading produces); the query model original_model is the same ViT without prompts.
Stored (all plain tensors, loadable with weights_only=True): {"model": state dict} as engine.py saves it
(without optimizer/args), inputs in [0,1], and per batch-wise setting the query, cosine matrix, ids,
reduce_sim and logits of PT-L2P's forward (engine.evaluate's path).
"""
import sys
import torch
sys.path.insert(0, sys.argv[1])
from vision_transformer import VisionTransformer  # PT-L2P's module

ARCH = dict(img_size=8, patch_size=4, in_chans=3, embed_dim=16, depth=2, num_heads=2)
M, L, N, C, B = 4, 2, 2, 5, 6
torch.manual_seed(0)


def build(batchwise):
    return VisionTransformer(num_classes=C, prompt_length=L, pool_size=M, top_k=N, prompt_pool=True, prompt_key=True,
                             head_type="prompt", embedding_key="cls", batchwise_prompt=batchwise, **ARCH).eval()


model = build(False)
with torch.no_grad():
    for name, p in model.named_parameters():
        if not name.startswith("prompt."):
            p.add_(torch.randn_like(p) * (0.1 if p.dim() > 1 else 0.3))
    model.pos_embed[:, 1:1 + N * L] = model.pos_embed[:, :1]
sd = {k: v.clone() for k, v in model.state_dict().items()}
original = VisionTransformer(num_classes=C, **ARCH).eval()
osd = {k: v for k, v in sd.items() if not k.startswith(("prompt.", "head.", "pos_embed"))}
osd["pos_embed"] = torch.cat([sd["pos_embed"][:, :1], sd["pos_embed"][:, 1 + N * L:]], 1)
osd.update({"head.weight": original.head.weight, "head.bias": original.head.bias})
original.load_state_dict(osd)
batchwise = build(True)
batchwise.load_state_dict(sd)
x = torch.rand(B, 3, 8, 8, generator=torch.Generator().manual_seed(1))
expected = {}
with torch.no_grad():
    q = original(x)["pre_logits"]
    for tag, m in (("per_sample", model), ("batchwise", batchwise)):
        r = m(x, cls_features=q)
        expected[tag] = {"query": q, "similarity": r["similarity"], "ids": r["prompt_idx"],
                         "reduce_sim": r["reduce_sim"], "logits": r["logits"]}
torch.save({"checkpoint": {"model": sd, "epoch": 4}, "inputs": x, "expected": expected}, sys.argv[2])
print({k: v["ids"].tolist() for k, v in expected.items()})
