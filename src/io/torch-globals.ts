// The fixed allow-list of globals a torch.save pickle may name, and what REDUCE does with each. Nothing else is ever
// resolved: any other module.name (os.system, builtins.eval, torch.load, ...) is refused by name. Browser-safe.
//   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) → TorchTensor
//   torch._utils._rebuild_parameter(tensor, requires_grad, hooks)                        → the tensor
//   torch._utils._rebuild_parameter_with_state(tensor, requires_grad, hooks, state)      → the tensor
//   collections.OrderedDict() / OrderedDict([(k, v), ...])                               → a dict
//   torch.<T>Storage, torch.UntypedStorage: type tags inside persistent ids, never called

import { TorchFileError } from "../errors.js";
import type { SafetensorsDtype } from "./safetensors-header.js";
import { describePy, PyDict, PyGlobal, PyList, PyTuple, type PyValue } from "./torch-values.js";

/** A storage named by a persistent id: its element dtype, its key (the record name) and its element count. */
export class TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: SafetensorsDtype,
    readonly elementBytes: number,
    readonly numel: number,
  ) {}
}

/** A tensor as torch.save describes it: a strided view (element units) of a storage. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** Storage classes by name → safetensors dtype and element size. UntypedStorage holds bytes. */
export const STORAGE_TYPES: Readonly<Record<string, readonly [SafetensorsDtype, number]>> = Object.freeze({
  DoubleStorage: ["F64", 8],
  FloatStorage: ["F32", 4],
  HalfStorage: ["F16", 2],
  BFloat16Storage: ["BF16", 2],
  LongStorage: ["I64", 8],
  IntStorage: ["I32", 4],
  ShortStorage: ["I16", 2],
  CharStorage: ["I8", 1],
  ByteStorage: ["U8", 1],
  BoolStorage: ["BOOL", 1],
  UntypedStorage: ["U8", 1],
});

const CALLABLE = new Set([
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "collections.OrderedDict",
]);

/** The storage tag a global names, or undefined when it is not a storage class. */
export function storageType(g: PyValue | undefined): readonly [SafetensorsDtype, number] | undefined {
  if (!(g instanceof PyGlobal)) return undefined;
  if (g.module !== "torch" && !(g.module === "torch.storage" && g.name === "UntypedStorage")) return undefined;
  return Object.hasOwn(STORAGE_TYPES, g.name) ? STORAGE_TYPES[g.name] : undefined;
}

/**
 * Resolves GLOBAL / STACK_GLOBAL against the allow-list.
 * @throws {TorchFileError} pickle_global_refused, naming the global
 */
export function findTorchGlobal(module: string, name: string, op: string): PyGlobal {
  const g = new PyGlobal(module, name);
  if (CALLABLE.has(g.fullName) || storageType(g) !== undefined) return g;
  throw new TorchFileError(
    "pickle_global_refused",
    `${op}: the pickle names ${JSON.stringify(g.fullName)}, which is not on lorakit's allow-list (tensor rebuild functions, storage types, OrderedDict); nothing was executed`,
    { global: g.fullName },
  );
}

function fail(op: string, what: string, details: Record<string, unknown> = {}): TorchFileError {
  return new TorchFileError("torch_file_invalid", `${op}: ${what}`, details);
}

function count(v: PyValue | undefined, what: string, op: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw fail(op, `${what} is ${describePy(v)}, expected a non-negative integer`);
  return v;
}

function ints(v: PyValue | undefined, what: string, op: string): number[] {
  if (!(v instanceof PyTuple)) throw fail(op, `${what} is ${describePy(v)}, expected a tuple of integers`);
  return v.items.map((x, i) => count(x, `${what}[${i}]`, op));
}

function rebuildTensor(args: PyValue[], op: string): TorchTensor {
  if (args.length !== 6 && args.length !== 7)
    throw fail(op, `_rebuild_tensor_v2 got ${args.length} arguments, expected 6 or 7`);
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage))
    throw fail(op, `_rebuild_tensor_v2's storage is ${describePy(storage)}, expected a persistent storage`);
  const shape = ints(size, "tensor size", op);
  const strides = ints(stride, "tensor stride", op);
  if (strides.length !== shape.length)
    throw fail(op, `tensor size [${shape.join(", ")}] and stride [${strides.join(", ")}] differ in length`);
  return new TorchTensor(storage, count(offset, "storage offset", op), shape, strides);
}

/** REDUCE on an allow-listed global. Storage tags are not callable. */
export function callTorchGlobal(fn: PyGlobal, args: PyValue[], op: string): PyValue {
  switch (fn.fullName) {
    case "torch._utils._rebuild_tensor_v2":
      return rebuildTensor(args, op);
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state":
      if (!(args[0] instanceof TorchTensor)) throw fail(op, `${fn.name} got ${describePy(args[0])}, not a tensor`);
      return args[0];
    case "collections.OrderedDict": {
      const d = new PyDict();
      if (args.length === 0) return d;
      const pairs = args[0];
      if (args.length === 1 && pairs instanceof PyList) {
        for (const p of pairs.items) {
          if (!(p instanceof PyTuple || p instanceof PyList) || p.items.length !== 2)
            throw fail(op, `OrderedDict item ${describePy(p)} is not a pair`);
          d.map.set(p.items[0], p.items[1] as PyValue);
        }
        return d;
      }
      throw fail(op, `OrderedDict called with ${args.map(describePy).join(", ")}`);
    }
    default:
      throw new TorchFileError(
        "pickle_global_refused",
        `${op}: the pickle calls ${fn.fullName}, a type tag that lorakit does not call`,
        { global: fn.fullName },
      );
  }
}
