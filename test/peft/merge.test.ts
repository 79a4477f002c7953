// mergeAdapterIntoModel end to end on synthetic base models written by the test: merged outputs x·W' must match
// the unmerged LoRA forward (lowRankForward in float32 and the float64 reference, within the float32 bound).

import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.js";
import { gemmReference, loraReference } from "../../src/kernels/reference.js";
import { lowRankForward } from "../../src/lora/forward.js";
import type { Matrix } from "../../src/matrix.js";
import { type MergeProgress, mergeAdapterIntoModel } from "../../src/node/merge.js";
import { expectClose, gemmBound, loraBound, U_F32 } from "../helpers/close.js";
import { loraError } from "../helpers/errors.js";
import { adapterBytes, GPT2_CONFIG, gpt2BaseBytes, gpt2Modules, randomArray, rng } from "./synthetic.js";

const LAYERS = 2;
const D = 8;
const R = 4;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "lorakit-merge-"));
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

describe("mergeAdapterIntoModel on a GPT-2-shaped base (Conv1D [dIn, dOut], fan_in_fan_out)", () => {
  const dir = tmp();
  const basePath = join(dir, "model.safetensors");
  writeFileSync(basePath, gpt2BaseBytes(LAYERS, D));
  const adapter = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(LAYERS, D, R)) });

  it("merged x·W' matches the unmerged forward for every module; other tensors are copied byte for byte", async () => {
    const out = join(dir, "merged.safetensors");
    const progress: MergeProgress[] = [];
    const summary = await mergeAdapterIntoModel(basePath, adapter, { out, onProgress: (p) => progress.push(p) });
    const base = parseSafetensors(readFileSync(basePath));
    const merged = parseSafetensors(readFileSync(out));
    expect(summary.merged.size).toBe(3 * LAYERS);
    expect(summary.merged.get("transformer.h.0.attn.c_attn")).toBe("h.0.attn.c_attn.weight");
    expect(progress).toHaveLength(base.names().length);
    expect(progress.at(-1)).toMatchObject({ done: base.names().length, bytesWritten: readFileSync(out).length });
    expect(progress.filter((p) => p.action === "merged")).toHaveLength(3 * LAYERS);
    expect(merged.names().sort()).toEqual(base.names().sort());
    expect(merged.metadata).toEqual({ format: "pt" });
    const next = rng(7);
    for (const m of adapter.modules) {
      const name = summary.merged.get(m.modulePath)!;
      const dIn = m.down.rows;
      const dOut = m.up.cols;
      const W: Matrix<Float32Array> = { data: base.toFloat32(name), rows: dIn, cols: dOut };
      const Wm = merged.toFloat32(name);
      const n = 3;
      const x: Matrix<Float32Array> = { data: randomArray(n * dIn, next), rows: n, cols: dIn };
      const hMerged = lowRankForward(
        x,
        { data: Wm, rows: dIn, cols: dOut },
        {
          down: { data: new Float32Array(dIn), rows: dIn, cols: 1 },
          up: { data: new Float32Array(dOut), rows: 1, cols: dOut },
          scaling: 0,
        },
      );
      const hUnmerged = lowRankForward(x, W, m);
      const ref = loraReference(x.data, W.data, m.down.data, m.up.data, m.scaling, n, dIn, dOut, m.r);
      const bound = loraBound(U_F32, dIn, m.r, m.scaling, ref.gaugeBase, ref.gaugeLowRank, ref.h);
      expectClose(hMerged.data, ref.h, { bound, shape: [n, dOut] });
      expectClose(hUnmerged.data, ref.h, { bound, shape: [n, dOut] });
    }
    for (const name of base.names())
      if (![...summary.merged.values()].includes(name))
        expect(Buffer.from(merged.bytes(name)).equals(Buffer.from(base.bytes(name)))).toBe(true);
  });

  it.each(["f16", "bf16"] as const)(
    "dtype %s: every float tensor is cast, merged ones after an f32 merge",
    async (dtype) => {
      const out = join(dir, `merged-${dtype}.safetensors`);
      const f32 = join(dir, "merged-f32.safetensors");
      await mergeAdapterIntoModel(basePath, adapter, { out: f32, dtype: "f32" });
      await mergeAdapterIntoModel(basePath, adapter, { out, dtype });
      const a = parseSafetensors(readFileSync(f32));
      const b = parseSafetensors(readFileSync(out));
      const u = dtype === "f16" ? 2 ** -11 : 2 ** -8;
      for (const name of a.names()) {
        expect(b.info(name).dtype).toBe(dtype.toUpperCase());
        const x = a.toFloat32(name);
        // round-to-nearest: relative error ≤ u (f16 subnormals add an absolute 2^-25)
        expectClose(b.toFloat32(name), x, { rtol: u, atol: 2 ** -24 });
      }
    },
  );

  it("missing_tensor: a module without a base tensor is reported before anything is written", async () => {
    const out = join(dir, "never.safetensors");
    const extra = loadPeftAdapter({
      config: GPT2_CONFIG,
      weights: adapterBytes([
        ...gpt2Modules(LAYERS, D, R),
        { path: "transformer.h.9.attn.c_attn", dIn: D, dOut: 3 * D, r: R },
      ]),
    });
    const e = await loraError(() => mergeAdapterIntoModel(basePath, extra, { out }), "missing_tensor");
    expect(e.message).toMatch(
      /mergeAdapterIntoModel: 1 adapter module\(s\) have no tensor in the base model: "transformer\.h\.9\.attn\.c_attn" \(tried "transformer\.h\.9\.attn\.c_attn\.weight", "h\.9\.attn\.c_attn\.weight"\) \(nothing was written\)/,
    );
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("shape_mismatch: a base tensor of other dims is reported before anything is written", async () => {
    const out = join(dir, "never2.safetensors");
    const wider = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(LAYERS, D + 2, R)) });
    const e = await loraError(() => mergeAdapterIntoModel(basePath, wider, { out }), "shape_mismatch");
    expect(e.message).toMatch(
      /base tensor\(s\) do not fit the adapter: "h\.0\.attn\.c_attn\.weight" is F32 \[8, 24\], expected \[10, 30\] for module "transformer\.h\.0\.attn\.c_attn"/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it("invalid_argument: two modules that resolve to the same base tensor", async () => {
    const twice = loadPeftAdapter({
      config: GPT2_CONFIG,
      weights: adapterBytes([
        { path: "transformer.h.0.attn.c_proj", dIn: D, dOut: D, r: R },
        { path: "h.0.attn.c_proj", dIn: D, dOut: D, r: R },
      ]),
    });
    const e = await loraError(
      () => mergeAdapterIntoModel(basePath, twice, { out: join(dir, "x.safetensors") }),
      "invalid_argument",
    );
    expect(e.message).toMatch(
      /base tensor "h\.0\.attn\.c_proj\.weight" is targeted twice \(second: module "transformer\.h\.0\.attn\.c_proj"\)/,
    );
  });

  it("non_finite: a merged weight with Inf aborts the merge and leaves no file", async () => {
    const out = join(dir, "inf.safetensors");
    const huge = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(LAYERS, D, R)) });
    const m = huge.modules[2]!;
    m.up.data.fill(3e38);
    m.down.data.fill(3e38);
    const e = await loraError(() => mergeAdapterIntoModel(basePath, huge, { out }), "non_finite");
    expect(e.message).toMatch(
      /merged weight "h\.0\.mlp\.c_proj\.weight" has 256 non-finite values \(first at \[0, 0\]\); the adapter for module "transformer\.h\.0\.mlp\.c_proj" seems broken and no output was written/,
    );
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("invalid_argument: an unknown output dtype", async () => {
    const e = await loraError(
      () => mergeAdapterIntoModel(basePath, adapter, { out: join(dir, "x.safetensors"), dtype: "f8" as never }),
      "invalid_argument",
    );
    expect(e.message).toMatch(/options\.dtype is "f8", expected "f32", "f16" or "bf16"/);
  });
});

describe("mergeAdapterIntoModel on nn.Linear weights [dOut, dIn], with DoRA", () => {
  it("W' = (m / ‖W + ΔW‖_col) ⊙ (W + ΔW) per output feature", async () => {
    const dir = tmp();
    const dIn = 6;
    const dOut = 5;
    const next = rng(11);
    const Wt = randomArray(dOut * dIn, next); // stored [dOut, dIn]
    const basePath = join(dir, "model.safetensors");
    writeFileSync(
      basePath,
      serializeSafetensors({ "model.layers.0.q_proj.weight": { dtype: "F32", shape: [dOut, dIn], data: Wt } }),
    );
    const adapter = loadPeftAdapter({
      config: { peft_type: "LORA", r: 2, lora_alpha: 3, use_dora: true },
      weights: adapterBytes([{ path: "model.layers.0.q_proj", dIn, dOut, r: 2, magnitude: true }], {}, rng(12)),
    });
    const out = join(dir, "merged.safetensors");
    await mergeAdapterIntoModel(basePath, adapter, { out });
    const m = adapter.modules[0]!;
    // float64 expectation in lorakit layout W [dIn, dOut]
    const W = transpose(Wt, dOut, dIn);
    const V = new Float64Array(dIn * dOut);
    for (let i = 0; i < dIn; i++)
      for (let j = 0; j < dOut; j++) {
        let s = 0;
        for (let q = 0; q < m.r; q++) s += m.down.data[i * m.r + q]! * m.up.data[q * dOut + j]!;
        V[i * dOut + j] = W[i * dOut + j]! + m.scaling * s;
      }
    const expected = new Float64Array(dOut * dIn); // stored [dOut, dIn]
    for (let j = 0; j < dOut; j++) {
      let norm = 0;
      for (let i = 0; i < dIn; i++) norm += V[i * dOut + j]! ** 2;
      for (let i = 0; i < dIn; i++) expected[j * dIn + i] = (m.magnitude![j]! / Math.sqrt(norm)) * V[i * dOut + j]!;
    }
    const got = parseSafetensors(readFileSync(out)).toFloat32("model.layers.0.q_proj.weight");
    // float32 error: (r + 2)·u in V, about dIn·u in the norm, 2·u for the scale and store (≈ 12u here); 64u margin
    expectClose(got, expected, { rtol: 64 * U_F32, atol: 64 * U_F32 });
  });
});

describe("mergeAdapterIntoModel with an embedding LoRA and modules_to_save", () => {
  it("embedding tables [numEmbeddings, dim] get W + s·down·up; modules_to_save tensors replace the base ones", async () => {
    const dir = tmp();
    const next = rng(21);
    const [V, Dm, r] = [11, 8, 3];
    const wte = randomArray(V * Dm, next);
    const basePath = join(dir, "model.safetensors");
    writeFileSync(
      basePath,
      serializeSafetensors({
        "transformer.wte.weight": { dtype: "F32", shape: [V, Dm], data: wte },
        "classifier.weight": { dtype: "F32", shape: [2, Dm], data: randomArray(2 * Dm, next) },
      }),
    );
    const head = randomArray(2 * Dm, next);
    const weights = serializeSafetensors({
      "base_model.model.transformer.wte.lora_embedding_A": {
        dtype: "F32",
        shape: [r, V],
        data: randomArray(r * V, next),
      },
      "base_model.model.transformer.wte.lora_embedding_B": {
        dtype: "F32",
        shape: [Dm, r],
        data: randomArray(Dm * r, next),
      },
      "base_model.model.classifier.weight": { dtype: "F32", shape: [2, Dm], data: head },
    });
    const adapter = loadPeftAdapter({
      config: { peft_type: "LORA", r, lora_alpha: 6, modules_to_save: ["classifier"] },
      weights,
    });
    const m = adapter.modules[0]!;
    expect([m.kind, m.down.rows, m.down.cols, m.up.rows, m.up.cols]).toEqual(["embedding", V, r, r, Dm]);
    const out = join(dir, "merged.safetensors");
    const summary = await mergeAdapterIntoModel(basePath, adapter, { out });
    expect(summary.replaced).toEqual(["classifier.weight"]);
    const merged = parseSafetensors(readFileSync(out));
    expect(Buffer.from(merged.bytes("classifier.weight")).equals(Buffer.from(head.buffer))).toBe(true);
    const ref = new Float64Array(V * Dm);
    const gauge = new Float64Array(V * Dm);
    gemmReference(ref, gauge, m.down.data, m.up.data, V, r, Dm);
    const expected = ref.map((v, k) => wte[k]! + m.scaling * v);
    const bound = gemmBound(
      U_F32,
      r + 1,
      gauge.map((g, k) => Math.abs(wte[k]!) + m.scaling * g),
      expected,
    );
    expectClose(merged.toFloat32("transformer.wte.weight"), expected, { bound, shape: [V, Dm] });
  });
});
