// The values the pickle interpreter (torch-pickle.ts) builds, and the hooks through which a caller lets a pickle
// reach anything else: plain numbers, strings and bytes stay JavaScript values; tuples, lists and dicts are the
// classes below; a GLOBAL is a PyGlobal the caller's allow-list returned, and only the caller's call() gives it
// meaning. Browser-safe.

/** A Python tuple. */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
/** A Python list. */
export class PyList {
  constructor(readonly items: PyValue[]) {}
}
/** A Python dict or OrderedDict; keys are the decoded values (strings for a state dict). */
export class PyDict {
  readonly map = new Map<unknown, PyValue>();
}
/** An allow-listed global, e.g. torch._utils._rebuild_tensor_v2 or torch.FloatStorage. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Anything the interpreter or the caller's hooks can put on the stack. */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyTuple | PyList | PyDict | object;

/** What a pickle may reference: the allow-list of globals and the persistent-id loader (torch storages). */
export interface PickleHooks {
  /** Returns the global, or throws pickle_global_refused (the caller names it). */
  findGlobal(module: string, name: string): PyGlobal;
  /** Calls an allow-listed global with its REDUCE arguments. */
  call(fn: PyGlobal, args: PyValue[]): PyValue;
  /** Resolves a BINPERSID id (torch: ('storage', type, key, location, numel, ...)). */
  persistentLoad(pid: PyValue): PyValue;
}

/** A short description of a value for messages (never recursive beyond one level). */
export function describePy(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "None";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  if (v instanceof PyTuple) return `tuple[${v.items.length}]`;
  if (v instanceof PyList) return `list[${v.items.length}]`;
  if (v instanceof PyDict) return `dict[${v.map.size}]`;
  if (v instanceof PyGlobal) return v.fullName;
  return v.constructor?.name ?? "object";
}
