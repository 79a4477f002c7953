// torch.save files (adapter_model.bin, pytorch_model.bin) → {name → dtype, shape, little-endian bytes}, read
// without executing anything (torch-pickle.ts interprets the opcodes, torch-globals.ts is the allow-list).
// Zip format (torch ≥ 1.6): <archive>/data.pkl (the state dict; storages as persistent ids
//   ('storage', torch.<T>Storage, key, location, numel)), <archive>/data/<key> (raw storage bytes, stored),
//   <archive>/byteorder ("little"), version files.
// Legacy format: five things back to back: pickle(magic 0x1950a86a20f9469cfc6c), pickle(protocol 1001),
//   pickle(sys_info dict), pickle(the state dict; ids ('storage', type, key, location, numel, view_metadata)),
//   pickle(list of storage keys), then per key in that order: numel as int64 LE and numel·elementBytes raw bytes.
// Tensors are strided views of storages: contiguous ones are returned as views into the input, others are copied
// element by element (offset + Σ index·stride), within a copy budget. Browser-safe.

import { AdapterFormatError, ArgumentError, TorchFileError } from "../errors.js";
import { type ParsedSafetensors, parseSafetensors } from "./safetensors.js";
import type { SafetensorsDtype } from "./safetensors-header.js";
import { serializeSafetensors } from "./safetensors-write.js";
import { callTorchGlobal, findTorchGlobal, storageType, TorchStorage, TorchTensor } from "./torch-globals.js";
import { runPickle } from "./torch-pickle.js";
import { describePy, type PickleHooks, PyDict, PyList, PyTuple, type PyValue } from "./torch-values.js";
import { isZip, readZipEntries } from "./torch-zip.js";

/** One tensor of a torch.save file: row-major little-endian bytes (a view into the input when contiguous). */
export interface TorchTensorView {
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
}

/** A read torch.save file. */
export interface TorchFile {
  format: "zip" | "legacy";
  /** In the pickle's order. */
  tensors: Map<string, TorchTensorView>;
}

export interface ReadTorchFileOptions {
  /** Bytes that strided (non-contiguous) tensors may copy in all; default 4 × the input length + 1 MiB. */
  maxCopyBytes?: number;
}

const OP = "readTorchFile";
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function fail(what: string, details: Record<string, unknown> = {}): TorchFileError {
  return new TorchFileError("torch_file_invalid", `${OP}: ${what}`, details);
}

/**
 * True when the bytes are a zip archive or a pickle (protocol ≥ 2) rather than safetensors, whose JSON header starts
 * at byte 8: what readTorchFile should be asked to read.
 */
export function looksLikeTorchFile(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array)) return false; // a predicate: what is not bytes is not a torch file
  const b8 = bytes[8];
  const jsonAt8 = b8 === 0x7b || b8 === 0x20 || b8 === 0x09 || b8 === 0x0a || b8 === 0x0d;
  return !jsonAt8 && (isZip(bytes) || (bytes[0] === 0x80 && bytes.length > 1 && bytes[1]! >= 2));
}

function hooksFor(persistentLoad: (pid: PyValue) => PyValue): PickleHooks {
  return {
    findGlobal: (module, name) => findTorchGlobal(module, name, OP),
    call: (fn, args) => callTorchGlobal(fn, args, OP),
    persistentLoad,
  };
}

// ('storage', type, key, location, numel[, view_metadata]) → a TorchStorage, the same object for a repeated key.
function storageFromId(pid: PyValue, arity: number, known: Map<string, TorchStorage>): TorchStorage {
  if (!(pid instanceof PyTuple) || pid.items.length !== arity || pid.items[0] !== "storage")
    throw fail(
      `persistent id ${describePy(pid)} is not ('storage', type, key, location, numel${arity === 6 ? ", view" : ""})`,
    );
  const [, tag, key, , numel, view] = pid.items;
  const type = storageType(tag);
  if (type === undefined) throw fail(`persistent id names ${describePy(tag)}, not a storage type`);
  if (typeof key !== "string") throw fail(`storage key ${describePy(key)} is not a string`);
  if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0)
    throw fail(`storage "${key}" has size ${describePy(numel)}, expected a non-negative integer`);
  if (arity === 6 && view !== null)
    throw new AdapterFormatError(
      "unsupported_format",
      `${OP}: storage "${key}" is a view of another storage (pre-0.4 torch.save); re-save the file with a current torch`,
      { key },
    );
  const s = new TorchStorage(key, type[0], type[1], numel);
  const prev = known.get(key);
  if (prev === undefined) known.set(key, s);
  else if (prev.dtype !== s.dtype || prev.numel !== s.numel)
    throw fail(`storage "${key}" is named twice with different types or sizes`, { key });
  return prev ?? s;
}

function readZip(bytes: Uint8Array, options: ReadTorchFileOptions): TorchFile {
  const entries = readZipEntries(bytes, OP);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1)
    throw fail(`a torch.save archive holds one <archive>/data.pkl, this one ${pkls.length} (${entries.size} entries)`);
  const prefix = pkls[0]!.slice(0, -"data.pkl".length);
  const order = entries.get(`${prefix}byteorder`);
  if (order !== undefined) {
    const text = new TextDecoder().decode(bytes.subarray(order.dataStart, order.dataStart + order.size));
    if (text !== "little")
      throw new AdapterFormatError(
        "unsupported_format",
        `${OP}: byteorder is ${JSON.stringify(text)}, expected "little"`,
      );
  }
  const known = new Map<string, TorchStorage>();
  const data = new Map<TorchStorage, Uint8Array>();
  const hooks = hooksFor((pid) => {
    const s = storageFromId(pid, 5, known);
    if (!data.has(s)) {
      const e = entries.get(`${prefix}data/${s.key}`);
      if (e === undefined) throw fail(`storage "${s.key}" has no record ${prefix}data/${s.key}`, { key: s.key });
      if (e.size !== s.numel * s.elementBytes)
        throw fail(`storage "${s.key}" claims ${s.numel} × ${s.elementBytes} bytes but its record holds ${e.size}`, {
          key: s.key,
          numel: s.numel,
          size: e.size,
        });
      data.set(s, bytes.subarray(e.dataStart, e.dataStart + e.size));
    }
    return s;
  });
  const pkl = entries.get(pkls[0]!)!;
  const { value } = runPickle(bytes.subarray(pkl.dataStart, pkl.dataStart + pkl.size), 0, hooks, OP);
  return { format: "zip", tensors: collect(value, data, bytes.length, options) };
}

function readLegacy(bytes: Uint8Array, options: ReadTorchFileOptions): TorchFile {
  const noStorage = hooksFor(() => {
    throw fail("a persistent id outside the data pickle");
  });
  const magic = runPickle(bytes, 0, noStorage, OP);
  if (magic.value !== LEGACY_MAGIC)
    throw fail(
      `the first pickle is ${describePy(magic.value)}, not torch.save's magic number (0x1950a86a20f9469cfc6c)`,
    );
  const proto = runPickle(bytes, magic.end, noStorage, OP);
  if (proto.value !== LEGACY_PROTOCOL) throw fail(`protocol version ${describePy(proto.value)}, expected 1001`);
  const info = runPickle(bytes, proto.end, noStorage, OP);
  if (!(info.value instanceof PyDict) || info.value.map.get("little_endian") !== true)
    throw new AdapterFormatError(
      "unsupported_format",
      `${OP}: sys_info does not say little_endian True (${describePy(info.value)}); lorakit reads little-endian files only`,
    );
  const known = new Map<string, TorchStorage>();
  const main = runPickle(
    bytes,
    info.end,
    hooksFor((pid) => storageFromId(pid, 6, known)),
    OP,
  );
  const keys = runPickle(bytes, main.end, noStorage, OP);
  if (!(keys.value instanceof PyList)) throw fail(`storage key list is ${describePy(keys.value)}, expected a list`);
  const data = new Map<TorchStorage, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of keys.value.items) {
    const s = typeof key === "string" ? known.get(key) : undefined;
    if (s === undefined || data.has(s)) throw fail(`storage key ${describePy(key)} is not a distinct stored storage`);
    if (pos + 8 > bytes.length) throw fail(`storage "${s.key}" is cut off at byte ${pos} (file has ${bytes.length})`);
    const numel = view.getBigInt64(pos, true);
    if (numel !== BigInt(s.numel))
      throw fail(`storage "${s.key}" at byte ${pos} holds ${numel} elements but the pickle says ${s.numel}`);
    const n = s.numel * s.elementBytes;
    if (n > bytes.length - pos - 8)
      throw fail(`storage "${s.key}" needs ${n} bytes at byte ${pos + 8} but the file has ${bytes.length}`);
    data.set(s, bytes.subarray(pos + 8, pos + 8 + n));
    pos += 8 + n;
  }
  for (const s of known.values()) if (!data.has(s)) throw fail(`storage "${s.key}" is not in the key list`);
  return { format: "legacy", tensors: collect(main.value, data, bytes.length, options) };
}

function collect(
  value: PyValue,
  data: Map<TorchStorage, Uint8Array>,
  inputLength: number,
  options: ReadTorchFileOptions,
): Map<string, TorchTensorView> {
  if (!(value instanceof PyDict)) throw fail(`the file holds ${describePy(value)}, expected a dict of name → tensor`);
  const budget = { left: options.maxCopyBytes ?? 4 * inputLength + (1 << 20) };
  const out = new Map<string, TorchTensorView>();
  for (const [name, t] of value.map) {
    if (typeof name !== "string" || name === "__metadata__")
      throw fail(`state dict key ${describePy(name)} is not a usable tensor name`);
    if (!(t instanceof TorchTensor)) throw fail(`"${name}" is ${describePy(t)}, not a tensor`, { name });
    out.set(name, {
      dtype: t.storage.dtype,
      shape: t.shape,
      bytes: materialise(name, t, data.get(t.storage)!, budget),
    });
  }
  return out;
}

// Row-major bytes of a strided view. x[i0, …, ik] = storage[offset + Σ i_j·stride_j].
function materialise(name: string, t: TorchTensor, storage: Uint8Array, budget: { left: number }): Uint8Array {
  const { shape, stride, offset } = t;
  const es = t.storage.elementBytes;
  if (shape.includes(0)) return storage.subarray(0, 0);
  let n = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    n *= shape[i]!;
    last += (shape[i]! - 1) * stride[i]!;
  }
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(last) || last >= t.storage.numel)
    throw fail(
      `tensor "${name}" [${shape.join(", ")}] (stride [${stride.join(", ")}], offset ${offset}) reaches element ${last} of a storage of ${t.storage.numel}`,
      { name, shape, stride, offset, numel: t.storage.numel },
    );
  let contiguous = true;
  for (let i = shape.length - 1, want = 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== want) contiguous = false;
    want *= shape[i]!;
  }
  if (contiguous) return storage.subarray(offset * es, (offset + n) * es);
  if (n * es > budget.left)
    throw new TorchFileError(
      "pickle_limit_exceeded",
      `${OP}: tensor "${name}" [${shape.join(", ")}] (stride [${stride.join(", ")}]) would copy ${n * es} bytes, over the ${budget.left} left of the copy budget (maxCopyBytes)`,
      { name, bytes: n * es, left: budget.left },
    );
  budget.left -= n * es;
  const out = new Uint8Array(n * es);
  const index = new Array<number>(shape.length).fill(0);
  let src = offset;
  for (let k = 0; k < n; k++) {
    out.set(storage.subarray(src * es, src * es + es), k * es);
    // odometer: advance the last index, carrying into earlier ones
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) {
        src += stride[d]!;
        break;
      }
      src -= (shape[d]! - 1) * stride[d]!;
      index[d] = 0;
    }
  }
  return out;
}

/**
 * Reads a torch.save file (zip or legacy format) without executing anything: the pickle is interpreted with a
 * fixed allow-list of globals, and every storage, offset and stride is checked against the bytes present.
 * @param bytes the whole file
 * @throws {TorchFileError} zip_invalid, pickle_invalid, pickle_opcode_refused, pickle_global_refused,
 *   pickle_limit_exceeded, torch_file_invalid
 * @throws {AdapterFormatError} unsupported_format (compressed zip entries, big-endian files, pre-0.4 storage views)
 * @throws {ArgumentError} invalid_argument (not bytes; a bad maxCopyBytes)
 * @example readTorchFile(bytes).tensors.get("base_model.model.h.0.attn.c_attn.lora_A.weight")?.shape // [8, 64]
 */
export function readTorchFile(input: Uint8Array | ArrayBuffer, options: ReadTorchFileOptions = {}): TorchFile {
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
  if (!(bytes instanceof Uint8Array))
    throw new ArgumentError("invalid_argument", `${OP}: expected a Uint8Array or ArrayBuffer, got ${typeof input}`);
  const max = options.maxCopyBytes;
  if (max !== undefined && !(typeof max === "number" && max >= 0 && Number.isFinite(max)))
    throw new ArgumentError(
      "invalid_argument",
      `${OP}: options.maxCopyBytes is ${String(max)}, expected a finite number of bytes ≥ 0`,
      { maxCopyBytes: max },
    );
  if (isZip(bytes)) return readZip(bytes, options);
  if (bytes.length > 0 && bytes[0] === 0x80) return readLegacy(bytes, options);
  throw fail(`the input (${bytes.length} bytes) is neither a zip archive nor a pickle`);
}

/**
 * Converts a torch.save file to safetensors bytes (the same tensors, bit for bit, with metadata {format: "pt"}).
 * @throws the errors of readTorchFile
 */
export function torchFileToSafetensors(
  bytes: Uint8Array | ArrayBuffer,
  options: ReadTorchFileOptions = {},
): Uint8Array {
  const { tensors } = readTorchFile(bytes, options);
  return serializeSafetensors(
    [...tensors].map(([name, t]) => [name, { dtype: t.dtype, shape: t.shape, data: t.bytes }] as const),
    { format: "pt" },
  );
}

/** Reads a torch.save file into the same interface parseSafetensors returns (through torchFileToSafetensors). */
export function parseTorchFile(bytes: Uint8Array | ArrayBuffer, options: ReadTorchFileOptions = {}): ParsedSafetensors {
  return parseSafetensors(torchFileToSafetensors(bytes, options));
}
