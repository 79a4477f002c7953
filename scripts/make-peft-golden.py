#!/usr/bin/env python3
"""Golden values for the real GPT-2 PEFT adapter (test/golden/peft-gpt2.json).

How the values are made, independently of lorakit:
  * the safetensors header is parsed by hand (struct + json), each F32 tensor read with numpy.frombuffer
    (little-endian '<f4') at 8 + N + data_offsets[0];
  * the adapter config gives r = 8, lora_alpha = 32, fan_in_fan_out = true, so scaling s = lora_alpha / r = 4;
  * for each module, in float64: delta = s * (lora_B @ lora_A).T   -> [dIn, dOut]
    (PEFT's get_delta_weight is transpose(B @ A, fan_in_fan_out) * scaling; lorakit's s * down @ up with
    down = lora_A.T and up = lora_B.T is the same matrix in [dIn, dOut] layout);
  * recorded per module: dIn, dOut, r, scaling, sum(delta), sum(delta**2), sum(|delta|), and delta at a few fixed
    indices (corners plus (7919*k mod dIn, 104729*k mod dOut) for k = 1..4).

Usage (from the repository root; needs python3 and numpy only):
    python3 scripts/make-peft-golden.py            # compare with the committed file byte for byte, exit 1 if not equal
    GOLDEN_UPDATE=1 python3 scripts/make-peft-golden.py   # rewrite test/golden/peft-gpt2.json
The adapter is read from ../shared/fixtures/real/gpt2-tigrinya-lora/ (shared/ a sibling of the repository clone,
or of its parent folder for a git worktree).
"""
import hashlib
import json
import os
import re
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# shared/ is a sibling of the clone (CI), or two levels up from a git worktree under <project>/wt/<branch>
SHARED = next(
    (p for p in (os.path.join(ROOT, "..", "shared"), os.path.join(ROOT, "..", "..", "shared")) if os.path.isdir(p)),
    os.path.join(ROOT, "..", "shared"),
)
ADAPTER = os.path.join(SHARED, "fixtures", "real", "gpt2-tigrinya-lora")
OUT = os.path.join(ROOT, "test", "golden", "peft-gpt2.json")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    start = 8 + n
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start + b : start + e], dtype="<f4").reshape(info["shape"])
    return tensors, hashlib.sha256(data).hexdigest()


def main():
    with open(os.path.join(ADAPTER, "adapter_config.json"), "rb") as f:
        cfg_bytes = f.read()
    cfg = json.loads(cfg_bytes)
    r, alpha = cfg["r"], cfg["lora_alpha"]
    assert cfg["fan_in_fan_out"] is True and not cfg.get("use_rslora") and not cfg.get("rank_pattern")
    s = alpha / r
    tensors, sha = read_safetensors(os.path.join(ADAPTER, "adapter_model.safetensors"))
    prefix, suffix_a, suffix_b = "base_model.model.", ".lora_A.weight", ".lora_B.weight"
    modules = sorted(k[len(prefix) : -len(suffix_a)] for k in tensors if k.endswith(suffix_a))
    out = []
    for m in modules:
        a = tensors[prefix + m + suffix_a].astype(np.float64)  # [r, dIn]
        b = tensors[prefix + m + suffix_b].astype(np.float64)  # [dOut, r]
        delta = s * (b @ a).T  # [dIn, dOut]
        d_in, d_out = delta.shape
        idx = [(0, 0), (0, d_out - 1), (d_in - 1, 0), (d_in - 1, d_out - 1)]
        idx += [((7919 * k) % d_in, (104729 * k) % d_out) for k in range(1, 5)]
        out.append(
            {
                "module": m,
                "dIn": d_in,
                "dOut": d_out,
                "r": a.shape[0],
                "scaling": s,
                "sum": float(delta.sum()),
                "sumSq": float((delta * delta).sum()),
                "sumAbs": float(np.abs(delta).sum()),
                "samples": [{"i": i, "j": j, "value": float(delta[i, j])} for i, j in idx],
            }
        )
    doc = {
        "generator": "scripts/make-peft-golden.py",
        "numpy": np.__version__,
        "source": "gpt2-tigrinya-lora (abrhaleyarefaine1997/gpt2-tigrinya-lora @ f9bbefc3)",
        "adapterSha256": sha,
        "configSha256": hashlib.sha256(cfg_bytes).hexdigest(),
        "formula": "delta = (lora_alpha / r) * (lora_B @ lora_A).T in float64, layout [dIn, dOut]",
        "modules": out,
    }
    # exponents written as biome formats JSON (1e-5, not 1e-05), so the repository's formatter leaves the file alone
    # (only in numbers: a digit before the "e", a sign after it)
    text = re.sub(r"(\d)e([+-])0*(\d)", lambda m: m.group(1) + "e" + m.group(2).replace("+", "") + m.group(3), json.dumps(doc, indent=2))
    text += "\n"
    if os.environ.get("GOLDEN_UPDATE") == "1":
        with open(OUT, "w") as f:
            f.write(text)
        print(f"wrote {OUT} ({len(out)} modules)")
        return 0
    try:
        with open(OUT) as f:
            old = f.read()
    except FileNotFoundError:
        print(f"{OUT} does not exist; run with GOLDEN_UPDATE=1")
        return 1
    same = old == text  # byte for byte: regeneration reproduces the committed file
    print("golden file matches" if same else "golden file differs; rerun with GOLDEN_UPDATE=1 if intended")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
