// A pickle opcode interpreter that never executes anything: it builds plain values (numbers, strings, bytes, tuples,
// lists, dicts) and hands every GLOBAL to a caller-supplied allow-list, whose entries are the only things REDUCE can
// call. Opcodes of protocols 2–5 that torch.save emits are read; the ones that would build arbitrary objects (INST,
// OBJ, NEWOBJ, NEWOBJ_EX, EXT*) and the text opcodes of protocol 0 are refused by name. Browser-safe.
// Bounds: every length is checked against the remaining input before it is read; the stack (with its marks), the
// memo and the number of values pushed are capped; ints are at most 64 bytes. Each opcode pushes at most one value
// and no opcode copies a container, so work and memory are linear in the input and bounded by the caps.

import { TorchFileError } from "../errors.js";
import { describePy, type PickleHooks, PyDict, PyGlobal, PyList, PyTuple, type PyValue } from "./torch-values.js";

/** Caps on what a pickle may build: stack depth (values plus marks), memo entries, values pushed in all. */
export const PICKLE_LIMITS = Object.freeze({
  maxStack: 1 << 20,
  maxMemo: 1 << 20,
  maxValues: 1 << 22,
  maxIntBytes: 64,
  maxNameBytes: 256,
});

// Opcodes refused by name: they construct arbitrary objects or belong to protocol 0/1 text forms torch never writes.
const REFUSED: Readonly<Record<number, string>> = {
  105: "INST",
  111: "OBJ",
  129: "NEWOBJ",
  146: "NEWOBJ_EX",
  130: "EXT1",
  131: "EXT2",
  132: "EXT4",
  80: "PERSID",
  73: "INT",
  76: "LONG",
  70: "FLOAT",
  83: "STRING",
  86: "UNICODE",
  112: "PUT",
  103: "GET",
  143: "EMPTY_SET",
  144: "ADDITEMS",
  145: "FROZENSET",
  151: "NEXT_BUFFER",
  152: "READONLY_BUFFER",
};

// What step() returns for an opcode that pushes nothing.
const SKIP: unique symbol = Symbol("skip");
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const LATIN1 = new TextDecoder("latin1");

function invalid(op: string, at: number, what: string): TorchFileError {
  return new TorchFileError("pickle_invalid", `${op}: pickle byte ${at}: ${what}`, { at });
}

/** The result of one pickle: its value and the offset just after its STOP opcode. */
export interface PickleResult {
  value: PyValue;
  end: number;
}

/**
 * Runs one pickle starting at `start` up to its STOP opcode, without executing anything but the hooks.
 * @throws {TorchFileError} pickle_invalid (truncated, unknown opcode, wrong operand types), pickle_opcode_refused,
 *   pickle_global_refused (from hooks.findGlobal), pickle_limit_exceeded
 * @example runPickle(bytes, 0, hooks, "readTorchFile").value
 */
export function runPickle(bytes: Uint8Array, start: number, hooks: PickleHooks, op: string): PickleResult {
  return new Machine(bytes, start, hooks, op).run();
}

class Machine {
  private pos: number;
  private at = 0;
  private readonly stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private pushed = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly hooks: PickleHooks,
    private readonly op: string,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private take(n: number, what: string): number {
    if (n > this.bytes.length - this.pos)
      throw invalid(this.op, this.at, `${what} needs ${n} bytes but only ${this.bytes.length - this.pos} remain`);
    const p = this.pos;
    this.pos += n;
    return p;
  }
  private u8(): number {
    return this.bytes[this.take(1, "operand")]!;
  }
  private u16(): number {
    return this.view.getUint16(this.take(2, "operand"), true);
  }
  private u32(): number {
    return this.view.getUint32(this.take(4, "operand"), true);
  }
  private u64(): number {
    const v = this.view.getBigUint64(this.take(8, "operand"), true);
    // no input is that long, so the length check that follows fails for any value this clamps
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  private raw(n: number, what: string): Uint8Array {
    const p = this.take(n, what);
    return this.bytes.subarray(p, p + n);
  }
  private utf8(n: number): string {
    const b = this.raw(n, "string");
    try {
      return UTF8.decode(b);
    } catch {
      throw invalid(this.op, this.at, `a ${n}-byte string is not valid UTF-8`);
    }
  }
  private line(): string {
    const end = this.bytes.subarray(0, this.pos + PICKLE_LIMITS.maxNameBytes + 1).indexOf(0x0a, this.pos);
    if (end < 0)
      throw invalid(this.op, this.at, `GLOBAL name has no newline within ${PICKLE_LIMITS.maxNameBytes} bytes`);
    const s = LATIN1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private limit(what: string, value: number, limit: number): TorchFileError {
    return new TorchFileError(
      "pickle_limit_exceeded",
      `${this.op}: pickle byte ${this.at}: ${what} ${value}, the limit is ${limit}`,
      { at: this.at, limit },
    );
  }
  private push(v: PyValue): void {
    const depth = this.stack.length + this.marks.length;
    if (depth >= PICKLE_LIMITS.maxStack) throw this.limit("stack and marks hold", depth, PICKLE_LIMITS.maxStack);
    if (++this.pushed > PICKLE_LIMITS.maxValues)
      throw this.limit("values pushed reach", this.pushed, PICKLE_LIMITS.maxValues);
    this.stack.push(v);
  }
  private pop(): PyValue {
    const floor = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
    if (this.stack.length <= floor) throw invalid(this.op, this.at, "stack underflow");
    return this.stack.pop() as PyValue;
  }
  private top(): PyValue {
    const floor = this.marks.length > 0 ? this.marks[this.marks.length - 1]! : 0;
    if (this.stack.length <= floor) throw invalid(this.op, this.at, "stack underflow");
    return this.stack[this.stack.length - 1] as PyValue;
  }
  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) throw invalid(this.op, this.at, "no MARK to pop to");
    return this.stack.splice(m);
  }
  private put(i: number): void {
    if (!this.memo.has(i) && this.memo.size >= PICKLE_LIMITS.maxMemo)
      throw this.limit("memo holds", this.memo.size, PICKLE_LIMITS.maxMemo);
    this.memo.set(i, this.top());
  }
  private get(i: number): PyValue {
    if (!this.memo.has(i)) throw invalid(this.op, this.at, `memo has no entry ${i}`);
    return this.memo.get(i) as PyValue;
  }
  private long(n: number): number | bigint {
    if (n > PICKLE_LIMITS.maxIntBytes) throw this.limit("an integer's byte count is", n, PICKLE_LIMITS.maxIntBytes);
    const b = this.raw(n, "integer");
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (n > 0 && b[n - 1]! >= 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  private pairsInto(target: PyValue, items: PyValue[]): void {
    if (!(target instanceof PyDict)) throw invalid(this.op, this.at, `SETITEM(S) on ${describePy(target)}, not a dict`);
    if (items.length % 2 !== 0) throw invalid(this.op, this.at, `SETITEMS with an odd count (${items.length})`);
    for (let i = 0; i < items.length; i += 2) target.map.set(items[i], items[i + 1] as PyValue);
  }

  run(): PickleResult {
    for (;;) {
      this.at = this.pos;
      const code = this.u8();
      if (code === 0x2e) {
        if (this.marks.length > 0 || this.stack.length !== 1)
          throw invalid(this.op, this.at, `STOP with ${this.stack.length} values and ${this.marks.length} marks left`);
        return { value: this.stack[0] as PyValue, end: this.pos };
      }
      const v = this.step(code);
      if (v !== SKIP) this.push(v);
    }
  }

  private step(code: number): PyValue | typeof SKIP {
    switch (code) {
      case 0x80: {
        const proto = this.u8();
        if (proto < 2 || proto > 5) throw invalid(this.op, this.at, `protocol ${proto}, expected 2 to 5`);
        return SKIP;
      }
      case 0x95: // FRAME: a length hint only
        this.u64();
        return SKIP;
      case 0x28: // MARK
        if (this.stack.length + this.marks.length >= PICKLE_LIMITS.maxStack)
          throw this.limit("stack and marks hold", this.stack.length + this.marks.length, PICKLE_LIMITS.maxStack);
        this.marks.push(this.stack.length);
        return SKIP;
      case 0x29:
        return new PyTuple([]);
      case 0x5d:
        return new PyList([]);
      case 0x7d:
        return new PyDict();
      case 0x74:
        return new PyTuple(this.popMark());
      case 0x85:
      case 0x86:
      case 0x87: {
        const n = code - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(this.pop());
        return new PyTuple(items);
      }
      case 0x6c: // LIST
        return new PyList(this.popMark());
      case 0x64: {
        const d = new PyDict();
        this.pairsInto(d, this.popMark());
        return d;
      }
      case 0x61: {
        const v = this.pop();
        const list = this.top();
        if (!(list instanceof PyList)) throw invalid(this.op, this.at, `APPEND to ${describePy(list)}, not a list`);
        list.items.push(v);
        return SKIP;
      }
      case 0x65: {
        const items = this.popMark();
        const list = this.top();
        if (!(list instanceof PyList)) throw invalid(this.op, this.at, `APPENDS to ${describePy(list)}, not a list`);
        for (const v of items) list.items.push(v);
        return SKIP;
      }
      case 0x73: {
        const v = this.pop();
        const k = this.pop();
        this.pairsInto(this.top(), [k, v]);
        return SKIP;
      }
      case 0x75: {
        const items = this.popMark();
        this.pairsInto(this.top(), items);
        return SKIP;
      }
      case 0x4e:
        return null;
      case 0x88:
        return true;
      case 0x89:
        return false;
      case 0x4a:
        return this.view.getInt32(this.take(4, "operand"), true);
      case 0x4b:
        return this.u8();
      case 0x4d:
        return this.u16();
      case 0x8a:
        return this.long(this.u8());
      case 0x8b: {
        const n = this.view.getInt32(this.take(4, "operand"), true);
        if (n < 0) throw invalid(this.op, this.at, `LONG4 with a negative length ${n}`);
        return this.long(n);
      }
      case 0x47:
        return this.view.getFloat64(this.take(8, "operand"), false);
      default:
        return this.stepMore(code);
    }
  }

  private stepMore(code: number): PyValue | typeof SKIP {
    switch (code) {
      case 0x58:
        return this.utf8(this.u32());
      case 0x8c:
        return this.utf8(this.u8());
      case 0x8d:
        return this.utf8(this.u64());
      case 0x54: {
        const n = this.view.getInt32(this.take(4, "operand"), true);
        if (n < 0) throw invalid(this.op, this.at, `BINSTRING with a negative length ${n}`);
        return LATIN1.decode(this.raw(n, "string"));
      }
      case 0x55:
        return LATIN1.decode(this.raw(this.u8(), "string"));
      case 0x42:
        return this.raw(this.u32(), "bytes");
      case 0x43:
        return this.raw(this.u8(), "bytes");
      case 0x8e:
      case 0x96:
        return this.raw(this.u64(), "bytes");
      case 0x71:
        this.put(this.u8());
        return SKIP;
      case 0x72:
        this.put(this.u32());
        return SKIP;
      case 0x94:
        this.put(this.memo.size);
        return SKIP;
      case 0x68:
        return this.get(this.u8());
      case 0x6a:
        return this.get(this.u32());
      case 0x63: {
        const module = this.line();
        const name = this.line();
        return this.hooks.findGlobal(module, name);
      }
      case 0x93: {
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== "string" || typeof name !== "string")
          throw invalid(
            this.op,
            this.at,
            `STACK_GLOBAL with ${describePy(module)} and ${describePy(name)}, not strings`,
          );
        return this.hooks.findGlobal(module, name);
      }
      case 0x52: {
        const args = this.pop();
        const fn = this.pop();
        if (!(args instanceof PyTuple)) throw invalid(this.op, this.at, `REDUCE arguments are ${describePy(args)}`);
        if (!(fn instanceof PyGlobal)) throw invalid(this.op, this.at, `REDUCE calls ${describePy(fn)}, not a global`);
        return this.hooks.call(fn, args.items);
      }
      case 0x62: {
        // BUILD: only a dict's instance state (an OrderedDict's _metadata) is accepted, and it is dropped
        const state = this.pop();
        const target = this.top();
        if (!(target instanceof PyDict) || !(state instanceof PyDict || state === null))
          throw new TorchFileError(
            "pickle_opcode_refused",
            `${this.op}: pickle byte ${this.at}: BUILD with ${describePy(state)} on ${describePy(target)} is refused (only a dict's own state is accepted)`,
            { at: this.at, opcode: "BUILD" },
          );
        return SKIP;
      }
      case 0x51:
        return this.hooks.persistentLoad(this.pop());
      case 0x30:
        this.pop();
        return SKIP;
      case 0x31:
        this.popMark();
        return SKIP;
      case 0x32:
        return this.top();
      default: {
        const name = REFUSED[code];
        if (name !== undefined)
          throw new TorchFileError(
            "pickle_opcode_refused",
            `${this.op}: pickle byte ${this.at}: opcode ${name} (0x${code.toString(16)}) is refused (lorakit builds only plain values and allow-listed torch objects)`,
            { at: this.at, opcode: name },
          );
        throw invalid(this.op, this.at, `unknown opcode 0x${code.toString(16).padStart(2, "0")}`);
      }
    }
  }
}
