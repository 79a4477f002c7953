// PEFT → ONNX Runtime .onnx_adapter: parameter names and values against the PEFT adapter, the adapter's parameters
// run in onnxruntime-web (WebAssembly backend) on a hand-written LoRA graph against lorakit's loraForward, a file
// written by ONNX Runtime's own Python AdapterFormat read back, round trips, and every refusal and malformed input.
// onnxruntime-web 1.30.0's JS API has no LoraAdapter / activeLoraAdapters (types.d.ts and the wasm's exports have
// none), so the ORT check feeds the parsed parameters by name, which is what ORT's Run does with an active adapter.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import { LoraError } from "../../src/errors.js";
import {
  adapterToOnnx,
  ONNX_FLOAT,
  ONNX_FLOAT16,
  onnxAdapterModules,
  onnxParameterToFloat32,
  parseOnnxAdapter,
  serializeOnnxAdapter,
} from "../../src/io/onnx-adapter.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { onnxAdapterParamName, peftKey } from "../../src/io/peft-keys.js";
import { loraForward } from "../../src/lora/forward.js";
import { GOLDEN, REPO_ROOT } from "../gguf/helpers.js";
import { caught } from "../helpers/errors.js";
import { fill } from "../helpers/random.js";
import { loraLinearModel } from "./onnx-graph.js";

ort.env.wasm.numThreads = 1;

function peft(variant: string) {
  const dir = join(GOLDEN!, variant, "adapter");
  return loadPeftAdapter({
    config: readFileSync(join(dir, "adapter_config.json"), "utf8"),
    weights: new Uint8Array(readFileSync(join(dir, "adapter_model.safetensors"))),
  });
}

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const fp = (...xs: number[]) => f32(xs);
const param = (name: string, dims: number[], data: Float32Array) => ({
  name,
  dims,
  dataType: ONNX_FLOAT,
  data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
});

describe("parameter names (Olive convert-adapters convention)", () => {
  it("shortens base_model.model.model to model and keeps other prefixes", () => {
    expect(onnxAdapterParamName("model.layers.0.self_attn.q_proj", "down")).toBe(
      peftKey("model.layers.0.self_attn.q_proj", "down").replace("base_model.model.model", "model"),
    );
    expect(onnxAdapterParamName("transformer.h.0.attn.c_attn", "up")).toBe(
      peftKey("transformer.h.0.attn.c_attn", "up"),
    );
  });
});

describe.skipIf(GOLDEN === null)("adapterToOnnx on the PEFT golden adapters", () => {
  for (const variant of ["peft-llama-basic", "peft-llama-rslora-all", "peft-llama-patterns", "peft-gpt2-conv1d"]) {
    it(`${variant}: down as stored, scaling folded into up, per module`, () => {
      const a = peft(variant);
      const parsed = parseOnnxAdapter(adapterToOnnx(a));
      expect(parsed.formatVersion).toBe(1);
      expect(parsed.parameters.length).toBe(2 * a.modules.length);
      const byName = new Map(parsed.parameters.map((p) => [p.name, p]));
      for (const m of a.modules) {
        const d = byName.get(onnxAdapterParamName(m.modulePath, "down"))!;
        const u = byName.get(onnxAdapterParamName(m.modulePath, "up"))!;
        expect(d.dims).toEqual([m.down.rows, m.r]);
        expect(u.dims).toEqual([m.r, m.up.cols]);
        expect(onnxParameterToFloat32(d)).toEqual(m.down.data);
        expect(onnxParameterToFloat32(u)).toEqual(m.up.data.map((x) => Math.fround(m.scaling * x)));
      }
      const back = onnxAdapterModules(adapterToOnnx(a));
      expect(back.map((m) => m.modulePath)).toEqual(a.modules.map((m) => m.modulePath));
    });
  }

  it("runs in onnxruntime-web: the adapter's parameters fed by name give lorakit's forward", async () => {
    const a = peft("peft-llama-rslora-all"); // alpha 8, r 16, rsLoRA: the case llama.cpp's converter gets 4× wrong
    const byName = new Map(parseOnnxAdapter(adapterToOnnx(a)).parameters.map((p) => [p.name, p]));
    for (const m of a.modules.slice(0, 3)) {
      const dIn = m.down.rows;
      const dOut = m.up.cols;
      const n = 5;
      const W = { rows: dIn, cols: dOut, data: fill(new Float32Array(dIn * dOut), 11) };
      const x = { rows: n, cols: dIn, data: fill(new Float32Array(n * dIn), 12) };
      const downName = onnxAdapterParamName(m.modulePath, "down");
      const upName = onnxAdapterParamName(m.modulePath, "up");
      const session = await ort.InferenceSession.create(loraLinearModel(W, downName, upName));
      const feed = (name: string) => {
        const p = byName.get(name)!;
        return new ort.Tensor("float32", onnxParameterToFloat32(p), p.dims);
      };
      const xt = new ort.Tensor("float32", x.data, [n, dIn]);
      const got = (await session.run({ x: xt, [downName]: feed(downName), [upName]: feed(upName) })).y!
        .data as Float32Array;
      const none = { [downName]: new ort.Tensor("float32", new Float32Array(0), [dIn, 0]) };
      none[upName] = new ort.Tensor("float32", new Float32Array(0), [0, dOut]);
      const plain = (await session.run({ x: xt, ...none })).y!.data as Float32Array; // no adapter: rank 0
      const want = loraForward(x, W, m.down, m.up, m.alpha, { scale: m.scaling }).data;
      const base = loraForward(x, W, m.down, m.up, 0).data;
      // float32 bound: each output sums dIn products for x·W and dIn + r for the low-rank path, in either order
      const eps = 2 ** -24;
      let worst = 0;
      let deltaSize = 0;
      for (let i = 0; i < n; i++)
        for (let o = 0; o < dOut; o++) {
          let mag = 0;
          for (let k = 0; k < dIn; k++) mag += Math.abs(x.data[i * dIn + k]! * W.data[k * dOut + o]!);
          for (let s = 0; s < m.r; s++) {
            let xd = 0;
            for (let k = 0; k < dIn; k++) xd += Math.abs(x.data[i * dIn + k]! * m.down.data[k * m.r + s]!);
            mag += xd * Math.abs(m.scaling * m.up.data[s * dOut + o]!);
          }
          const bound = 2 * (dIn + m.r + 2) * eps * mag;
          const e = Math.abs(got[i * dOut + o]! - want[i * dOut + o]!);
          worst = Math.max(worst, e / bound);
          deltaSize = Math.max(deltaSize, Math.abs(want[i * dOut + o]! - base[i * dOut + o]!));
          expect(Math.abs(plain[i * dOut + o]! - base[i * dOut + o]!)).toBeLessThanOrEqual(bound);
        }
      expect(worst).toBeLessThanOrEqual(1);
      expect(deltaSize).toBeGreaterThan(1e-3); // the adapter changes the output, so the check can fail
      await session.release();
    }
  });

  it("refuses DoRA and embedding LoRA by name", () => {
    const dora = caught(() => adapterToOnnx(peft("peft-llama-dora")));
    expect(dora.code).toBe("unsupported_format");
    expect(dora.message).toMatch(/^adapterToOnnx: module ".+" is DoRA .*cannot express it$/);
    const embed = caught(() => adapterToOnnx(peft("peft-llama-embed-mts")));
    expect(embed.code).toBe("unsupported_format");
    expect(embed.message).toMatch(/adapterToOnnx: .*(embedding LoRA|modules_to_save).*cannot express it/);
  });
});

describe("the .onnx_adapter FlatBuffer", () => {
  const ps = [param("model.a.lora", [2, 3], fp(1, 2, 3, 4, 5, 6)), param("s", [], fp(7)), param("e", [0, 4], fp())];

  it("round-trips parameters, versions, empty dims and empty data", () => {
    const bytes = serializeOnnxAdapter(ps, { adapterVersion: 3, modelVersion: -2 });
    const back = parseOnnxAdapter(bytes);
    expect([back.formatVersion, back.adapterVersion, back.modelVersion]).toEqual([1, 3, -2]);
    expect(back.parameters.map((p) => [p.name, p.dims, Array.from(onnxParameterToFloat32(p))])).toEqual([
      ["model.a.lora", [2, 3], [1, 2, 3, 4, 5, 6]],
      ["s", [], [7]],
      ["e", [0, 4], []],
    ]);
    expect(String.fromCharCode(...bytes.subarray(4, 8))).toBe("TORT");
    expect(parseOnnxAdapter(serializeOnnxAdapter([])).parameters).toEqual([]);
  });

  it("writes float16 factors within float16 rounding", () => {
    const v = fill(new Float32Array(6), 5);
    const p = parseOnnxAdapter(
      serializeOnnxAdapter([{ name: "h", dims: [6], dataType: ONNX_FLOAT16, data: new Uint8Array(12) }]),
    );
    expect(p.parameters[0]!.data.length).toBe(12);
    const m = onnxAdapterModules(
      adapterToOnnx({ format: "mlx", config: {}, warnings: [], modules: [mlxModule(v)] }, { dtype: "F16" }),
    );
    for (let i = 0; i < 6; i++)
      expect(Math.abs(m[0]!.down.data[i]! - v[i]!)).toBeLessThanOrEqual(Math.abs(v[i]!) * 2 ** -11);
  });

  it("reads a file written by ONNX Runtime's own AdapterFormat (onnxruntime 1.30.0, Python)", () => {
    const bytes = new Uint8Array(readFileSync(join(REPO_ROOT, "test", "fixtures", "onnx", "ort-written.onnx_adapter")));
    const a = parseOnnxAdapter(bytes);
    expect([a.formatVersion, a.adapterVersion, a.modelVersion]).toEqual([1, 2, 5]);
    expect(a.parameters.map((p) => [p.name, p.dims, p.dataType, Array.from(onnxParameterToFloat32(p))])).toEqual([
      ["param_a", [4, 1], ONNX_FLOAT, [3, 4, 5, 6]],
      ["param_b", [1, 4], ONNX_FLOAT, [7, 8, 9, 10]],
    ]);
  });

  it("gives coded errors for malformed files", () => {
    const good = serializeOnnxAdapter(ps);
    const err = (b: Uint8Array) => caught(() => parseOnnxAdapter(b));
    const mutate = (f: (v: DataView, b: Uint8Array) => void) => {
      const b = good.slice();
      f(new DataView(b.buffer), b);
      return b;
    };
    let e = err(good.subarray(0, 8));
    expect([e.code, e.message]).toEqual([
      "invalid_magic",
      'parseOnnxAdapter: file identifier missing (8 bytes), expected "TORT" at bytes 4..8',
    ]);
    expect(err(mutate((_, b) => b.set([0x47], 4))).code).toBe("invalid_magic");
    e = err(good.subarray(0, good.length - 8));
    expect(e.code).toBe("truncated_file");
    expect(e.message).toMatch(/^parseOnnxAdapter: parameter 2 raw_data at byte \d+ \(\+\d+\) is past the end/);
    e = err(mutate((v) => v.setUint32(0, 0x7fffff00, true)));
    expect(e.code).toBe("truncated_file");
    e = err(mutate((v) => v.setUint32(0, 22, true)));
    expect([e.code, e.message]).toEqual([
      "invalid_header",
      "parseOnnxAdapter: Adapter at byte 22, expected 4-byte alignment",
    ]);
    e = err(mutate((v) => v.setUint16(8, 3, true)));
    expect([e.code, e.message]).toEqual([
      "invalid_header",
      "parseOnnxAdapter: Adapter vtable sizes 3/20, expected even ≥ 4",
    ]);
    e = err(mutate((v) => v.setInt32(24, 2, true)));
    expect([e.code, e.message]).toEqual([
      "unsupported_version",
      "parseOnnxAdapter: format_version 2, expected 1 (what ONNX Runtime accepts)",
    ]);
    const neg = serializeOnnxAdapter([param("n", [1], fp(1))]);
    const at = neg.length - 4 - 4 - 4 - 8; // the one dim; then 4 bytes of padding, raw_data's length prefix and data
    new DataView(neg.buffer).setBigInt64(at, -1n, true);
    e = err(neg);
    expect([e.code, e.message]).toEqual([
      "invalid_header",
      'parseOnnxAdapter: parameter 0 ("n") dim 0 is -1, expected ≥ 0',
    ]);
  });

  it("gives coded errors for bad parameters", () => {
    let e = caught(() => serializeOnnxAdapter([param("x", [2, 2], fp(1, 2, 3))]));
    expect([e.code, e.message]).toEqual([
      "data_length_mismatch",
      'serializeOnnxAdapter: parameter "x" has 12 bytes, expected 16 (dims [2,2], 4 bytes each)',
    ]);
    e = caught(() => serializeOnnxAdapter([{ name: "s", dims: [1], dataType: 8, data: new Uint8Array(1) }]));
    expect(e.code).toBe("unsupported_dtype");
    expect(e.message).toMatch(/^serializeOnnxAdapter: parameter "s" data_type 8, expected a fixed-size ONNX type/);
    e = caught(() => serializeOnnxAdapter([param("d", [1], fp(1)), param("d", [1], fp(2))]));
    expect([e.code, e.message]).toEqual(["duplicate_name", 'serializeOnnxAdapter: parameter "d" twice']);
    e = caught(() => onnxAdapterModules(serializeOnnxAdapter([param("free", [1], fp(1))])));
    expect(e.code).toBe("unexpected_tensor");
    e = caught(() =>
      onnxAdapterModules(serializeOnnxAdapter([param(onnxAdapterParamName("model.q", "down"), [1, 1], fp(1))])),
    );
    expect([e.code, e.message]).toEqual([
      "missing_tensor",
      'onnxAdapterModules: module "model.q" has only one of its two factors',
    ]);
  });

  it("refuses two parameters that are the same factor of one module", () => {
    const short = "model.layers.0.self_attn.q_proj.lora_A.weight";
    const long = `base_model.model.${short}`;
    const bytes = serializeOnnxAdapter([
      param(short, [1, 1], fp(1)),
      param(long, [1, 1], fp(2)),
      param(onnxAdapterParamName("model.layers.0.self_attn.q_proj", "up"), [1, 1], fp(3)),
    ]);
    const e = caught(() => onnxAdapterModules(bytes));
    expect([e.name, e.code, e.message]).toEqual([
      "AdapterFormatError",
      "duplicate_name",
      `onnxAdapterModules: parameters "${short}" and "${long}" are both the down factor of module "model.layers.0.self_attn.q_proj", expected one`,
    ]);
  });

  it("never crashes on corrupted bytes (seeded fuzz)", () => {
    const good = serializeOnnxAdapter(ps);
    let s = 7;
    const next = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s;
    };
    let errors = 0;
    for (let t = 0; t < 2000; t++) {
      const b = good.slice(0, t % 5 === 0 ? next() % good.length : good.length);
      for (let k = 0; k < 1 + (next() % 4); k++) if (b.length > 0) b[next() % b.length] = next() & 0xff;
      try {
        parseOnnxAdapter(b);
      } catch (e) {
        expect(e).toBeInstanceOf(LoraError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
  });
});

function mlxModule(v: Float32Array) {
  return {
    modulePath: "model.layers.0.self_attn.q_proj",
    kind: "linear" as const,
    down: { rows: 6, cols: 1, data: v },
    up: { rows: 1, cols: 2, data: fp(1, -1) },
    r: 1,
    alpha: 1,
    scaling: 1,
    fanInFanOut: false,
    dtype: "F32" as const,
  };
}
