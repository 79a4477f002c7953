// A hand-written ONNX model (protobuf, onnx.proto3 field numbers) for checking .onnx_adapter files in ONNX Runtime:
//   y [n, dOut] = MatMul(x, W) + MatMul(MatMul(x, down), up)
// x [n, dIn] is an input; W [dIn, dOut] an initializer; down [dIn, "r"] and up ["r", dOut] are plain graph inputs
// (Olive's ExtractAdapters with make_inputs; onnxruntime-genai feeds rank-0 tensors when no adapter is active).
// Not initializer-backed: onnxruntime-web lists only non-initializer inputs in inputNames and refuses other feeds.
// ONNX Runtime's active adapters feed their parameters as inputs by name.

type Field = number[];

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}
const num = (field: number, n: number): Field => [...varint(field << 3), ...varint(n)];
const bytesField = (field: number, b: ArrayLike<number>): Field => [
  ...varint((field << 3) | 2),
  ...varint(b.length),
  ...Array.from(b),
];
const str = (field: number, s: string) => bytesField(field, new TextEncoder().encode(s));
const msg = (field: number, parts: Field[]) => bytesField(field, parts.flat());

const FLOAT = 1;

function valueInfo(field: number, name: string, dims: (number | string)[]): Field {
  const dim = dims.map((d) => msg(1, [typeof d === "number" ? num(1, d) : str(2, d)]));
  // ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1, shape 2: { dim 1 } } } }
  return msg(field, [str(1, name), msg(2, [msg(1, [num(1, FLOAT), msg(2, dim)])])]);
}

function initializer(name: string, dims: number[], data: Float32Array): Field {
  // TensorProto { dims 1, data_type 2, name 8, raw_data 9 (little-endian) }
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return msg(5, [...dims.map((d) => num(1, d)), num(2, FLOAT), str(8, name), bytesField(9, raw)]);
}

function node(op: string, inputs: string[], output: string): Field {
  return msg(1, [...inputs.map((i) => str(1, i)), str(2, output), str(3, `${op}_${output}`), str(4, op)]);
}

/** The model bytes for one LoRA linear layer whose factors are inputs named downName / upName. */
export function loraLinearModel(
  W: { rows: number; cols: number; data: Float32Array },
  downName: string,
  upName: string,
): Uint8Array {
  const { rows: dIn, cols: dOut } = W;
  const graph = [
    node("MatMul", ["x", "W"], "xw"),
    node("MatMul", ["x", downName], "xd"),
    node("MatMul", ["xd", upName], "xdu"),
    node("Add", ["xw", "xdu"], "y"),
    str(2, "lora_linear"),
    initializer("W", [dIn, dOut], W.data),
    valueInfo(11, "x", ["n", dIn]),
    valueInfo(11, downName, [dIn, "r"]),
    valueInfo(11, upName, ["r", dOut]),
    valueInfo(12, "y", ["n", dOut]),
  ];
  // ModelProto { ir_version 1, graph 7, opset_import 8: { domain 1, version 2 } }
  return new Uint8Array([...num(1, 8), ...msg(7, graph), ...msg(8, [str(1, ""), num(2, 13)])]);
}
