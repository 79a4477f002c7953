// ONNX Runtime's LoRA adapter file (.onnx_adapter): a FlatBuffer, schema onnxruntime/lora/adapter_format/
// adapter_schema.fbs, file_identifier "TORT", root table Adapter:
//   Adapter   { format_version:int (must be 1); adapter_version:int; model_version:int; parameters:[Parameter] }
//   Parameter { name:string; dims:[int64]; data_type:TensorDataType (int32, ONNX's TensorProto enum);
//               raw_data:[uint8] (force_align: 8, little-endian element bytes) }
// ONNX Runtime (LoraAdapter / RunOptions active adapters) feeds every parameter to Run as an input of that name.
// Pure and browser-safe. Written front to back, which FlatBuffers allows (offsets only point forward):
//   [u32 root offset][ "TORT" ][Adapter vtable][Adapter table][parameters vector]
//   then per parameter: [vtable][table][name string][dims vector][raw_data vector]
// Every vector's elements start 8-aligned (the length prefix sits just before), tables and vtables 4-aligned.

import { decodeBf16Array, encodeBf16Array } from "../dtype/bf16.js";
import { decodeF16Array, encodeF16Array } from "../dtype/f16.js";
import { AdapterFormatError } from "../errors.js";
import type { Matrix } from "../matrix.js";
import {
  int32Options,
  invalidArgument,
  oneOf,
  requireAdapter,
  requireBytes,
  requireFiniteWritten,
} from "./format-args.js";
import type { MlxAdapter } from "./mlx-adapter.js";
import type { PeftAdapter } from "./peft-adapter.js";
import { onnxAdapterParamName, parseOnnxAdapterParamName } from "./peft-keys.js";

/** ONNX TensorProto data types lorakit writes and decodes (others are read as bytes). */
export const ONNX_FLOAT = 1;
export const ONNX_FLOAT16 = 10;
export const ONNX_BFLOAT16 = 16;
/** The only adapter format version ONNX Runtime accepts (adapter_format_version.h). */
export const ONNX_ADAPTER_FORMAT_VERSION = 1;

// Bytes per element of ONNX data type t = index (0 for UNDEFINED 0 and STRING 8, which have none).
const ELEMENT_SIZE = [0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 8, 16, 2, 1, 1, 1, 1];

/** One parameter: an input the adapter feeds by name. */
export interface OnnxAdapterParameter {
  name: string;
  dims: number[];
  /** ONNX TensorProto data type (1 float, 10 float16, 16 bfloat16, …). */
  dataType: number;
  /** Little-endian element bytes, product(dims) × element size long. */
  data: Uint8Array;
}

/** A parsed .onnx_adapter file. */
export interface OnnxAdapter {
  formatVersion: number;
  adapterVersion: number;
  modelVersion: number;
  parameters: OnnxAdapterParameter[];
}

const fail = (op: string, code: "invalid_magic" | "truncated_file" | "invalid_header", msg: string, d = {}): never => {
  throw new AdapterFormatError(code, `${op}: ${msg}`, d);
};

/**
 * Serializes parameters into an .onnx_adapter FlatBuffer (format_version 1).
 * @throws {AdapterFormatError} "data_length_mismatch" when a parameter's bytes disagree with its dims and type;
 *   "unsupported_dtype" for a data type without a fixed element size; "duplicate_name" for a repeated name
 */
export function serializeOnnxAdapter(
  parameters: readonly OnnxAdapterParameter[],
  versions: { adapterVersion?: number; modelVersion?: number } = {},
): Uint8Array {
  const op = "serializeOnnxAdapter";
  if (!Array.isArray(parameters as unknown))
    throw invalidArgument(op, "parameters", parameters, "an array of { name, dims, dataType, data }");
  versions = int32Options(op, "versions", versions, ["adapterVersion", "modelVersion"]);
  const names = new Set<string>();
  const enc = new TextEncoder();
  const nameBytes = parameters.map((p, i) => {
    checkParameter(op, p, `parameters[${i}]`);
    if (names.has(p.name)) throw new AdapterFormatError("duplicate_name", `${op}: parameter "${p.name}" twice`, {});
    names.add(p.name);
    return enc.encode(p.name);
  });
  const pad8 = (n: number) => (n + 7) & ~7;
  // sizes: header 8, adapter vtable 12, adapter table 20, vector 4 + 4n; per parameter vtable 12, table 20,
  // string 4 + len + 1 (padded), dims and raw_data vectors placed with their elements 8-aligned.
  let size = 8 + 12 + 20 + 4 + 4 * parameters.length;
  const layout = parameters.map((p, i) => {
    const vt = (size = (size + 3) & ~3);
    const table = vt + 12;
    const name = table + 20;
    const dims = pad8(name + 4 + nameBytes[i]!.length + 1 + 4) - 4; // length prefix; elements at dims + 4
    const raw = pad8(dims + 4 + 8 * p.dims.length + 4) - 4;
    size = raw + 4 + p.data.length;
    return { vt, table, name, dims, raw };
  });
  const out = new Uint8Array((size + 3) & ~3);
  const v = new DataView(out.buffer);
  const u32 = (at: number, x: number) => v.setUint32(at, x, true);
  const vtable = (at: number, tableSize: number, fields: number[]) => {
    v.setUint16(at, 4 + 2 * fields.length, true);
    v.setUint16(at + 2, tableSize, true);
    for (let k = 0; k < fields.length; k++) v.setUint16(at + 4 + 2 * k, fields[k]!, true);
  };
  u32(0, 20); // root table
  out.set([0x54, 0x4f, 0x52, 0x54], 4); // "TORT"
  vtable(8, 20, [4, 8, 12, 16]);
  v.setInt32(20, 20 - 8, true); // table → vtable: vtable = table - soffset
  v.setInt32(24, ONNX_ADAPTER_FORMAT_VERSION, true);
  v.setInt32(28, versions.adapterVersion ?? 0, true);
  v.setInt32(32, versions.modelVersion ?? 0, true);
  u32(36, 40 - 36); // parameters vector at 40
  u32(40, parameters.length);
  parameters.forEach((p, i) => {
    const l = layout[i]!;
    u32(44 + 4 * i, l.table - (44 + 4 * i));
    vtable(l.vt, 20, [4, 8, 12, 16]);
    v.setInt32(l.table, l.table - l.vt, true);
    u32(l.table + 4, l.name - (l.table + 4));
    u32(l.table + 8, l.dims - (l.table + 8));
    v.setInt32(l.table + 12, p.dataType, true);
    u32(l.table + 16, l.raw - (l.table + 16));
    u32(l.name, nameBytes[i]!.length);
    out.set(nameBytes[i]!, l.name + 4); // NUL terminator: already 0
    u32(l.dims, p.dims.length);
    for (let k = 0; k < p.dims.length; k++) v.setBigInt64(l.dims + 4 + 8 * k, BigInt(p.dims[k]!), true);
    u32(l.raw, p.data.length);
    out.set(p.data, l.raw + 4);
  });
  return out;
}

function checkParameter(op: string, p: OnnxAdapterParameter, arg: string): void {
  if (p === null || typeof p !== "object" || typeof p.name !== "string" || !Array.isArray(p.dims as unknown))
    throw invalidArgument(op, arg, p, "{ name: string, dims: number[], dataType: number, data }");
  if (typeof p.dataType !== "number")
    throw invalidArgument(op, `parameter "${p.name}" dataType`, p.dataType, "a number");
  if (!(p.data instanceof Uint8Array))
    throw invalidArgument(op, `parameter "${p.name}" data`, p.data, "a Uint8Array (little-endian element bytes)");
  const size = ELEMENT_SIZE[p.dataType] ?? 0;
  if (size === 0)
    throw new AdapterFormatError(
      "unsupported_dtype",
      `${op}: parameter "${p.name}" data_type ${p.dataType}, expected a fixed-size ONNX type (1 float, 10 float16, …)`,
      { name: p.name, dataType: p.dataType },
    );
  let n = 1;
  for (const d of p.dims) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new AdapterFormatError(
        "invalid_header",
        `${op}: parameter "${p.name}" dims [${p.dims}], expected sizes ≥ 0`,
        {
          name: p.name,
        },
      );
    n *= d;
  }
  if (!Number.isSafeInteger(n * size) || n * size !== p.data.length)
    throw new AdapterFormatError(
      "data_length_mismatch",
      `${op}: parameter "${p.name}" has ${p.data.length} bytes, expected ${n * size} (dims [${p.dims}], ${size} bytes each)`,
      { name: p.name, actual: p.data.length, expected: n * size },
    );
}

/**
 * Parses an .onnx_adapter file strictly (what ONNX Runtime's FlatBuffers verifier and loader check, and that every
 * parameter's bytes match its dims). Parameter data are views into `bytes`.
 * @throws {AdapterFormatError} "invalid_magic" (no "TORT" identifier), "truncated_file" (an offset or length past
 *   the end), "invalid_header" (a malformed table, vtable, misaligned or missing field, negative dims),
 *   "unsupported_version" (format_version ≠ 1), "unsupported_dtype", "data_length_mismatch", "duplicate_name"
 */
export function parseOnnxAdapter(bytes: Uint8Array): OnnxAdapter {
  const op = "parseOnnxAdapter";
  requireBytes(op, "bytes", bytes, "an .onnx_adapter file's bytes");
  const len = bytes.length;
  if (len <= 8 || bytes[4] !== 0x54 || bytes[5] !== 0x4f || bytes[6] !== 0x52 || bytes[7] !== 0x54)
    fail(op, "invalid_magic", `file identifier missing (${len} bytes), expected "TORT" at bytes 4..8`, { length: len });
  const v = new DataView(bytes.buffer, bytes.byteOffset, len);
  const need = (at: number, n: number, what: string) => {
    if (at < 0 || at + n > len)
      fail(op, "truncated_file", `${what} at byte ${at} (+${n}) is past the end of the ${len}-byte file`, { at });
  };
  const aligned = (at: number, a: number, what: string) => {
    if (at % a !== 0) fail(op, "invalid_header", `${what} at byte ${at}, expected ${a}-byte alignment`, { at });
  };
  const deref = (at: number, what: string) => {
    need(at, 4, what);
    aligned(at, 4, what);
    return at + v.getUint32(at, true);
  };
  // A table: returns field(k) → absolute position of field k, or null when absent.
  const table = (at: number, what: string) => {
    need(at, 4, what);
    aligned(at, 4, what);
    const vt = at - v.getInt32(at, true);
    need(vt, 4, `${what} vtable`);
    aligned(vt, 2, `${what} vtable`);
    const vtSize = v.getUint16(vt, true);
    const tSize = v.getUint16(vt + 2, true);
    if (vtSize < 4 || vtSize % 2 !== 0 || tSize < 4)
      fail(op, "invalid_header", `${what} vtable sizes ${vtSize}/${tSize}, expected even ≥ 4`, { at });
    need(vt, vtSize, `${what} vtable`);
    need(at, tSize, what);
    return (k: number, width: number): number | null => {
      if (4 + 2 * k >= vtSize) return null;
      const off = v.getUint16(vt + 4 + 2 * k, true);
      if (off === 0) return null;
      if (off + width > tSize) fail(op, "invalid_header", `${what} field ${k} at ${off} outside its table`, { at });
      aligned(at + off, width, `${what} field ${k}`);
      return at + off;
    };
  };
  const vector = (at: number, elem: number, what: string) => {
    const start = deref(at, what);
    need(start, 4, what);
    aligned(start, 4, what);
    const n = v.getUint32(start, true);
    need(start + 4, n * elem, what);
    return { at: start + 4, n };
  };
  const root = table(deref(0, "root offset"), "Adapter");
  const int = (f: number | null) => (f === null ? 0 : v.getInt32(f, true));
  const formatVersion = int(root(0, 4));
  if (formatVersion !== ONNX_ADAPTER_FORMAT_VERSION)
    throw new AdapterFormatError(
      "unsupported_version",
      `${op}: format_version ${formatVersion}, expected ${ONNX_ADAPTER_FORMAT_VERSION} (what ONNX Runtime accepts)`,
      { actual: formatVersion },
    );
  const paramsField = root(3, 4);
  const params = paramsField === null ? { at: 0, n: 0 } : vector(paramsField, 4, "parameters");
  const dec = new TextDecoder("utf-8", { fatal: true });
  const parameters: OnnxAdapterParameter[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < params.n; i++) {
    const what = `parameter ${i}`;
    const f = table(deref(params.at + 4 * i, what), what);
    const nameF = f(0, 4);
    const dimsF = f(1, 4);
    const rawF = f(3, 4);
    if (nameF === null || dimsF === null || rawF === null)
      fail(op, "invalid_header", `${what} lacks its name, dims or raw_data (all three are required)`, { index: i });
    const s = vector(nameF!, 1, `${what} name`);
    let name = "";
    try {
      name = dec.decode(bytes.subarray(s.at, s.at + s.n));
    } catch {
      fail(op, "invalid_header", `${what} name is not UTF-8`, { index: i });
    }
    const d = vector(dimsF!, 8, `${what} dims`);
    const dims: number[] = [];
    for (let k = 0; k < d.n; k++) {
      const x = v.getBigInt64(d.at + 8 * k, true);
      if (x < 0n || x > BigInt(Number.MAX_SAFE_INTEGER))
        fail(op, "invalid_header", `${what} ("${name}") dim ${k} is ${x}, expected ≥ 0`, { name });
      dims.push(Number(x));
    }
    const r = vector(rawF!, 1, `${what} raw_data`);
    const p = { name, dims, dataType: int(f(2, 4)), data: bytes.subarray(r.at, r.at + r.n) };
    checkParameter(op, p, what);
    if (seen.has(name)) throw new AdapterFormatError("duplicate_name", `${op}: parameter "${name}" twice`, { name });
    seen.add(name);
    parameters.push(p);
  }
  return { formatVersion, adapterVersion: int(root(1, 4)), modelVersion: int(root(2, 4)), parameters };
}

function floatBytes(data: Float32Array, dataType: number): Uint8Array {
  const src =
    dataType === ONNX_FLOAT16
      ? encodeF16Array(data)
      : dataType === ONNX_BFLOAT16
        ? encodeBf16Array(data)
        : Float32Array.from(data);
  // typed arrays are little-endian on every platform JS runs on (as in safetensors-write.ts)
  return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
}

/** Options of adapterToOnnx. */
export interface AdapterToOnnxOptions {
  /** Element type of the factors (default "F32"). */
  dtype?: "F32" | "F16" | "BF16";
  adapterVersion?: number;
  modelVersion?: number;
}

/**
 * Converts a loaded PEFT or MLX adapter into an .onnx_adapter file in Olive's convert-adapters convention: per
 * module a down parameter [dIn, r] and an up parameter scaling·up [r, dOut], named by peft-keys.ts
 * onnxAdapterParamName (PEFT's key, "base_model.model.model" shortened to "model"), so the graph computes
 * y = x·W + (x·down)·up with no scale input. Each module's own
 * scaling (rsLoRA, rank_pattern, alpha_pattern, MLX scale) is folded in, so it is exact per module.
 * @throws {AdapterFormatError} "unsupported_format" for what the format cannot carry: DoRA, embedding LoRA, trained
 *   biases, saved base weights, modules_to_save
 */
export function adapterToOnnx(adapter: PeftAdapter | MlxAdapter, options: AdapterToOnnxOptions = {}): Uint8Array {
  const op = "adapterToOnnx";
  requireAdapter(op, adapter);
  options = int32Options<AdapterToOnnxOptions>(op, "options", options, ["adapterVersion", "modelVersion"]);
  const dtype = oneOf(op, "options.dtype", options.dtype, ["F32", "F16", "BF16"] as const) ?? "F32";
  const refuse = (what: string, module: string): never => {
    throw new AdapterFormatError("unsupported_format", `${op}: ${what}; an ONNX Runtime adapter cannot express it`, {
      module,
      reason: "inexpressible",
    });
  };
  if (adapter.format === "peft")
    for (const key of adapter.modulesToSave.keys())
      refuse(`tensor "${key}" is a full modules_to_save/bias tensor`, key);
  const dataType = { F32: ONNX_FLOAT, F16: ONNX_FLOAT16, BF16: ONNX_BFLOAT16 }[dtype];
  const parameters: OnnxAdapterParameter[] = [];
  for (const m of adapter.modules) {
    if (m.magnitude !== undefined) refuse(`module "${m.modulePath}" is DoRA (lora_magnitude_vector)`, m.modulePath);
    if (m.kind === "embedding") refuse(`module "${m.modulePath}" is an embedding LoRA`, m.modulePath);
    if (m.bias !== undefined) refuse(`module "${m.modulePath}" has a trained bias`, m.modulePath);
    if (m.baseWeight !== undefined) refuse(`module "${m.modulePath}" carries its own base weight`, m.modulePath);
    const up = new Float32Array(m.up.data.length);
    for (let i = 0; i < up.length; i++) up[i] = m.scaling * m.up.data[i]!;
    for (const [role, f, x] of [
      ["down", m.down, m.down.data],
      ["up", m.up, up],
    ] as const) {
      const name = onnxAdapterParamName(m.modulePath, role);
      const data = floatBytes(x, dataType);
      requireFiniteWritten(op, m, role, `parameter "${name}"`, x, dtype, data);
      parameters.push({ name, dims: [f.rows, f.cols], dataType, data });
    }
  }
  return serializeOnnxAdapter(parameters, options);
}

/** A parameter's values as float32 (float, float16 or bfloat16 parameters). */
export function onnxParameterToFloat32(p: OnnxAdapterParameter): Float32Array {
  checkParameter("onnxParameterToFloat32", p, "p");
  const copy = p.data.slice(); // aligned copy
  if (p.dataType === ONNX_FLOAT) return new Float32Array(copy.buffer, 0, copy.length / 4);
  const u16 = new Uint16Array(copy.buffer, 0, copy.length / 2);
  if (p.dataType === ONNX_FLOAT16) return decodeF16Array(u16);
  if (p.dataType === ONNX_BFLOAT16) return decodeBf16Array(u16);
  throw new AdapterFormatError(
    "unsupported_dtype",
    `onnxParameterToFloat32: parameter "${p.name}" data_type ${p.dataType}, expected 1, 10 or 16 (float types)`,
    { name: p.name, dataType: p.dataType },
  );
}

/** One module read back from an .onnx_adapter: ΔW = down·up (scaling already folded into up). */
export interface OnnxAdapterModule {
  modulePath: string;
  down: Matrix<Float32Array>;
  up: Matrix<Float32Array>;
}

/**
 * Reads the LoRA modules of an .onnx_adapter written in Olive's convention (lorakit's round trip).
 * @throws {AdapterFormatError} as parseOnnxAdapter; "unexpected_tensor" for a parameter name outside the convention
 *   or not 2-D; "missing_tensor" for a module with one factor; "invalid_header" when the two ranks disagree;
 *   "duplicate_name" for two parameters that name the same factor of a module
 */
export function onnxAdapterModules(bytes: Uint8Array): OnnxAdapterModule[] {
  const op = "onnxAdapterModules";
  requireBytes(op, "bytes", bytes, "an .onnx_adapter file's bytes");
  const byModule = new Map<string, { down?: Matrix<Float32Array>; up?: Matrix<Float32Array> }>();
  const names = new Map<string, string>(); // module path + role → the parameter name it was read from
  for (const p of parseOnnxAdapter(bytes).parameters) {
    const k = parseOnnxAdapterParamName(p.name);
    if (k === null || p.dims.length !== 2)
      throw new AdapterFormatError(
        "unexpected_tensor",
        `${op}: parameter "${p.name}" dims [${p.dims}], expected a 2-D factor named as onnxAdapterParamName names them`,
        { name: p.name },
      );
    const entry = byModule.get(k.modulePath) ?? {};
    const first = names.get(`${k.modulePath}\0${k.role}`);
    if (first !== undefined)
      throw new AdapterFormatError(
        "duplicate_name",
        `${op}: parameters "${first}" and "${p.name}" are both the ${k.role} factor of module "${k.modulePath}", expected one`,
        { name: p.name, other: first, module: k.modulePath, role: k.role },
      );
    names.set(`${k.modulePath}\0${k.role}`, p.name);
    entry[k.role] = { rows: p.dims[0]!, cols: p.dims[1]!, data: onnxParameterToFloat32(p) };
    byModule.set(k.modulePath, entry);
  }
  const out: OnnxAdapterModule[] = [];
  for (const [modulePath, { down, up }] of byModule) {
    if (!down || !up)
      throw new AdapterFormatError("missing_tensor", `${op}: module "${modulePath}" has only one of its two factors`, {
        module: modulePath,
      });
    if (down.cols !== up.rows)
      throw new AdapterFormatError(
        "invalid_header",
        `${op}: module "${modulePath}" down [${down.rows}, ${down.cols}] and up [${up.rows}, ${up.cols}], expected equal ranks`,
        { module: modulePath },
      );
    out.push({ modulePath, down, up });
  }
  return out;
}
