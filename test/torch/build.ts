// Writers for test torch.save files, byte by byte as PyTorch lays them out (zip: <archive>/data.pkl + data/<key>,
// stored; legacy: magic, protocol, sys_info, data, key list pickles then raw storages), so tests can make valid,
// strided and hostile files without torch. Pickle opcodes as in CPython's Lib/pickle.py.

type Part = number | readonly number[] | Uint8Array | string;

/** Concatenates bytes, byte arrays and ASCII strings. */
export function bytesOf(...parts: Part[]): Uint8Array {
  const chunks = parts.map((p) =>
    typeof p === "number"
      ? Uint8Array.of(p)
      : typeof p === "string"
        ? Uint8Array.from(p, (c) => c.charCodeAt(0))
        : p instanceof Uint8Array
          ? p
          : Uint8Array.from(p),
  );
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function le(n: number | bigint, size: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  for (let i = 0; i < size; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

export const u16 = (n: number): number[] => le(n, 2);
export const u32 = (n: number): number[] => le(n, 4);
export const u64 = (n: number | bigint): number[] => le(n, 8);

export const PROTO2 = [0x80, 2];
export const STOP = 0x2e;
export const MARK = 0x28;
export const TUPLE = 0x74;
export const EMPTY_TUPLE = 0x29;
export const EMPTY_DICT = 0x7d;
export const EMPTY_LIST = 0x5d;
export const SETITEMS = 0x75;
export const REDUCE = 0x52;
export const BINPERSID = 0x51;
export const NEWFALSE = 0x89;
export const NONE = 0x4e;

/** BINUNICODE. */
export function str(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  return bytesOf(0x58, u32(b.length), b);
}
/** BININT (signed 32-bit), or LONG1 with 8 bytes beyond that range. */
export const int = (n: number): Uint8Array =>
  n === (n | 0) ? bytesOf(0x4a, le(n >>> 0, 4)) : bytesOf(0x8a, 8, le(BigInt.asUintN(64, BigInt(n)), 8));
/** GLOBAL module\nname\n. */
export const global = (module: string, name: string): Uint8Array => bytesOf(0x63, `${module}\n${name}\n`);
/** MARK items… TUPLE. */
export const tuple = (...items: Uint8Array[]): Uint8Array => bytesOf(MARK, ...items, TUPLE);

export interface TensorSpec {
  storage: string;
  key: string;
  numel: number;
  offset: number;
  shape: number[];
  stride: number[];
}

/** _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()). Legacy ids have a 6th None. */
export function tensor(t: TensorSpec, legacy = false): Uint8Array {
  const id = tuple(
    str("storage"),
    global("torch", t.storage),
    str(t.key),
    str("cpu"),
    int(t.numel),
    ...(legacy ? [bytesOf(NONE)] : []),
  );
  return bytesOf(
    global("torch._utils", "_rebuild_tensor_v2"),
    tuple(
      bytesOf(id, BINPERSID),
      int(t.offset),
      tuple(...t.shape.map(int)),
      tuple(...t.stride.map(int)),
      bytesOf(NEWFALSE),
      bytesOf(global("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE),
    ),
    REDUCE,
  );
}

/** A whole state-dict pickle: {name: value, ...} with each value given as pickle bytes. */
export function statePickle(entries: [string, Uint8Array][]): Uint8Array {
  return bytesOf(PROTO2, EMPTY_DICT, MARK, ...entries.flatMap(([k, v]) => [str(k), v]), SETITEMS, STOP);
}

export interface ZipOptions {
  /** Write every size and offset through zip64 records. */
  zip64?: boolean;
  /** Compression method written in the headers (the data is left as is). */
  method?: number;
  flags?: number;
}

/** A zip of stored entries (CRC left 0: the reader does not check it). */
export function zipStored(entries: [string, Uint8Array][], opts: ZipOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const method = opts.method ?? 0;
  const flags = opts.flags ?? 0;
  const big = (n: number): number[] => u32(opts.zip64 ? 0xffffffff : n);
  for (const [name, data] of entries) {
    const n = new TextEncoder().encode(name);
    const local = bytesOf(u32(0x04034b50), u16(20), u16(flags), u16(method), u32(0), u32(0), u32(data.length));
    parts.push(bytesOf(local, u32(data.length), u16(n.length), u16(0), n, data));
    const extra = opts.zip64 ? bytesOf(u16(1), u16(24), u64(data.length), u64(data.length), u64(offset)) : bytesOf();
    central.push(
      bytesOf(u32(0x02014b50), u16(20), u16(20), u16(flags), u16(method), u32(0), u32(0), big(data.length)),
      bytesOf(big(data.length), u16(n.length), u16(extra.length), u16(0), u16(0), u16(0), u32(0), big(offset), n),
      extra,
    );
    offset += 30 + n.length + data.length;
  }
  const cd = bytesOf(...central);
  const tail: Uint8Array[] = [];
  if (opts.zip64) {
    const z = offset + cd.length;
    tail.push(
      bytesOf(u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(entries.length), u64(entries.length)),
      bytesOf(u64(cd.length), u64(offset), u32(0x07064b50), u32(0), u64(z), u32(1)),
      bytesOf(u32(0x06054b50), u16(0), u16(0), u16(0xffff), u16(0xffff), u32(0xffffffff), u32(0xffffffff), u16(0)),
    );
  } else {
    tail.push(
      bytesOf(u32(0x06054b50), u16(0), u16(0), u16(entries.length), u16(entries.length), u32(cd.length)),
      bytesOf(u32(offset), u16(0)),
    );
  }
  return bytesOf(...parts, cd, ...tail);
}

/** A zip-format torch.save file: <archive>/data.pkl, byteorder, data/<key> per storage, version. */
export function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array>, opts: ZipOptions = {}): Uint8Array {
  return zipStored(
    [
      ["archive/data.pkl", pkl],
      ["archive/byteorder", bytesOf("little")],
      ...Object.entries(storages).map(([k, v]) => [`archive/data/${k}`, v] as [string, Uint8Array]),
      ["archive/version", bytesOf("3\n")],
    ],
    opts,
  );
}

/** The legacy format: magic, protocol 1001, sys_info, the data pickle, the key list, then numel + bytes per key. */
export function torchLegacy(
  pkl: Uint8Array,
  storages: [string, number, Uint8Array][],
  sysInfo: Uint8Array = statePickle([["little_endian", bytesOf(0x88)]]),
): Uint8Array {
  const magic = bytesOf(PROTO2, 0x8a, 10, le(0x1950a86a20f9469cfc6cn, 10), STOP);
  const proto = bytesOf(PROTO2, 0x4d, u16(1001), STOP);
  const keys = bytesOf(PROTO2, EMPTY_LIST, MARK, ...storages.map(([k]) => str(k)), 0x65, STOP);
  return bytesOf(magic, proto, sysInfo, pkl, keys, ...storages.flatMap(([, numel, b]) => [bytesOf(u64(numel)), b]));
}

/** float32 values as little-endian bytes. */
export const f32 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);

/** A state-dict pickle with one tensor "w", by default one float32 element of storage "0". */
export const oneTensorPickle = (
  id = tensor({ storage: "FloatStorage", key: "0", numel: 1, offset: 0, shape: [1], stride: [1] }),
): Uint8Array => statePickle([["w", id]]);

/** A torch.save zip of `pkl` with storage "0" holding one float32 (1). */
export const oneStorageZip = (pkl: Uint8Array): Uint8Array => torchZip(pkl, { "0": f32([1]) });
