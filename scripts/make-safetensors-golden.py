#!/usr/bin/env python3
"""Independent safetensors reader that writes test/golden/safetensors-real.json.

For every *.safetensors file under the real-fixture folder (default: ../shared/fixtures/real next to the repo) it
reads the header with struct + json (not the `safetensors` package, and not lorakit), sorts tensors by data_offsets,
and records per tensor: dtype, shape, data_offsets, sha256 of the raw bytes, and sha256 + exact sum (math.fsum) of
the values decoded with numpy to float64 little-endian (NaN canonicalised to 0x7ff8000000000000). BF16 is decoded
as (uint16 << 16) viewed as float32. Files under 20 KB are also copied into test/fixtures/safetensors/ (flat, with
the dtype in the name so case-insensitive file systems keep B/b, H/h, I/i apart); "fixture" names the copy.

Usage: python3 scripts/make-safetensors-golden.py [FIXTURE_ROOT]
Refuses to overwrite a golden file that differs unless GOLDEN_UPDATE=1 is set.
"""

import hashlib
import json
import math
import os
import re
import shutil
import struct
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "test", "golden", "safetensors-real.json")
COPY_DIR = os.path.join(REPO, "test", "fixtures", "safetensors")
COPY_LIMIT = 20_000

NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BOOL": "u1", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2",
    "U32": "<u4", "I32": "<i4", "U64": "<u8", "I64": "<i8",
}


def decode(dtype, raw):
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype("<u4") << 16
        return bits.view("<f4").astype("<f8")
    if dtype not in NUMPY_DTYPES:
        return None
    return np.frombuffer(raw, dtype=NUMPY_DTYPES[dtype]).astype("<f8")


def describe(path, root):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    entries = sorted(header.items(), key=lambda kv: (tuple(kv[1]["data_offsets"]), kv[0]))
    start = 8 + n
    tensors = []
    for name, info in entries:
        b, e = info["data_offsets"]
        raw = data[start + b : start + e]
        item = {
            "name": name,
            "dtype": info["dtype"],
            "shape": info["shape"],
            "dataOffsets": [b, e],
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
        values = decode(info["dtype"], raw)
        if values is not None:
            values = values.copy()
            values[np.isnan(values)] = np.nan
            bits = values.view("<u8")
            bits[np.isnan(values)] = 0x7FF8000000000000
            item["valuesSha256"] = hashlib.sha256(values.tobytes()).hexdigest()
            finite = values[np.isfinite(values)]
            item["sum"] = math.fsum(finite.tolist())
        tensors.append(item)
    return {
        "path": os.path.relpath(path, root).replace(os.sep, "/"),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "headerLength": n,
        "dataStart": start,
        "metadata": metadata,
        "tensors": tensors,
    }


def to_json(value, indent=0, prefix_len=0):
    """JSON laid out as the repository's formatter (biome) lays it out, so `biome check` leaves the file alone:
    objects one key per line, arrays of scalars on one line when they fit in 120 columns, else one item per line."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f'{pad}  {json.dumps(k, ensure_ascii=False)}: '
            + to_json(v, indent + 2, indent + 4 + len(json.dumps(k, ensure_ascii=False)))
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if not any(isinstance(v, (dict, list)) for v in value):
            inline = "[" + ", ".join(to_json(v) for v in value) + "]"
            if prefix_len + len(inline) + 1 <= 120:
                return inline
        return "[\n" + ",\n".join(pad + "  " + to_json(v, indent + 2, indent + 2) for v in value) + "\n" + pad + "]"
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        # biome writes exponents without "+" and leading zeros: 1e-05 → 1e-5, 1e+20 → 1e20
        text = re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), text)
    return text


def local_name(entry):
    stem = os.path.splitext(os.path.basename(entry["path"]))[0]
    if len(entry["tensors"]) == 1:
        stem += "-" + entry["tensors"][0]["dtype"]
    return stem + ".safetensors"


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "..", "shared", "fixtures", "real"))
    paths = []
    for d, _, files in os.walk(root):
        paths += [os.path.join(d, f) for f in files if f.endswith(".safetensors")]
    files = [describe(p, root) for p in sorted(paths, key=lambda p: os.path.relpath(p, root))]
    taken = set()
    for entry in files:
        if entry["size"] >= COPY_LIMIT:
            continue
        name = local_name(entry)
        if name.lower() in taken:
            raise SystemExit(f"fixture copy name collides (case-insensitively): {name}")
        taken.add(name.lower())
        entry["fixture"] = name
    golden = {
        "generator": "scripts/make-safetensors-golden.py",
        "how": "header read with struct.unpack('<Q') + json.loads; values decoded with numpy; "
        "tensors in data_offsets order; valuesSha256 = sha256 of float64 little-endian values, NaN canonical; "
        "sum = math.fsum of the finite values",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "files": files,
    }
    text = to_json(golden) + "\n"
    if os.path.exists(OUT) and open(OUT, encoding="utf-8").read() != text and os.environ.get("GOLDEN_UPDATE") != "1":
        raise SystemExit(f"{OUT} differs; set GOLDEN_UPDATE=1 to overwrite it")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    os.makedirs(COPY_DIR, exist_ok=True)
    for entry in files:
        if "fixture" in entry:
            shutil.copyfile(os.path.join(root, entry["path"]), os.path.join(COPY_DIR, entry["fixture"]))
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUT, REPO)}: {len(files)} files, {sum(len(e['tensors']) for e in files)} tensors")


if __name__ == "__main__":
    main()
