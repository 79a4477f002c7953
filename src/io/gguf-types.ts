// GGUF's vocabulary: ggml tensor types (id, block size, bytes per block, as ggml.c's type_traits and gguf-py's
// GGML_QUANT_SIZES list them), metadata value types (gguf.h's gguf_type) and the shapes lorakit uses for both.
// Shapes are in ggml order: ne[0] is the fastest-varying dimension (a row), so a row-major torch [rows, cols] tensor
// has ne = [cols, rows].

/** A ggml tensor type: its on-disk id, its elements per block and bytes per block. */
export interface GgmlTypeInfo {
  id: number;
  name: string;
  blockSize: number;
  typeSize: number;
}

// id, name, block size, bytes per block (QK_K = 256). Ids 4, 5 and 31–33, 36–38 were removed from ggml.
const TABLE: [number, string, number, number][] = [
  [0, "F32", 1, 4],
  [1, "F16", 1, 2],
  [2, "Q4_0", 32, 18],
  [3, "Q4_1", 32, 20],
  [6, "Q5_0", 32, 22],
  [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34],
  [9, "Q8_1", 32, 40],
  [10, "Q2_K", 256, 84],
  [11, "Q3_K", 256, 110],
  [12, "Q4_K", 256, 144],
  [13, "Q5_K", 256, 176],
  [14, "Q6_K", 256, 210],
  [15, "Q8_K", 256, 292],
  [16, "IQ2_XXS", 256, 66],
  [17, "IQ2_XS", 256, 74],
  [18, "IQ3_XXS", 256, 98],
  [19, "IQ1_S", 256, 50],
  [20, "IQ4_NL", 32, 18],
  [21, "IQ3_S", 256, 110],
  [22, "IQ2_S", 256, 82],
  [23, "IQ4_XS", 256, 136],
  [24, "I8", 1, 1],
  [25, "I16", 1, 2],
  [26, "I32", 1, 4],
  [27, "I64", 1, 8],
  [28, "F64", 1, 8],
  [29, "IQ1_M", 256, 56],
  [30, "BF16", 1, 2],
  [34, "TQ1_0", 256, 54],
  [35, "TQ2_0", 256, 66],
  [39, "MXFP4", 32, 17],
  [40, "NVFP4", 64, 36],
  [41, "Q1_0", 128, 18],
  [42, "Q2_0", 64, 18],
];

const BY_ID = new Map<number, GgmlTypeInfo>();
const BY_NAME = new Map<string, GgmlTypeInfo>();
for (const [id, name, blockSize, typeSize] of TABLE) {
  const info = Object.freeze({ id, name, blockSize, typeSize });
  BY_ID.set(id, info);
  BY_NAME.set(name, info);
}

/** The ggml types lorakit decodes and encodes; every other known type is named and its bytes kept as they are. */
export type GgmlCodedType = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0";
export const GGML_CODED_TYPES: readonly GgmlCodedType[] = ["F32", "F16", "BF16", "Q8_0", "Q4_0"];

/** The ggml type with this id, or undefined for an id ggml does not (or no longer) define. */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** The ggml type with this name ("F32", "Q8_0", ...), or undefined. */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name);
}

/** Bytes of a tensor of `elements` elements (a multiple of the block size) of this type. */
export function ggmlByteLength(type: GgmlTypeInfo, elements: number): number {
  return (elements / type.blockSize) * type.typeSize;
}

/** GGUF metadata value types (gguf.h gguf_type), by on-disk id. */
export const GGUF_VALUE_TYPES = [
  "u8",
  "i8",
  "u16",
  "i16",
  "u32",
  "i32",
  "f32",
  "bool",
  "string",
  "array",
  "u64",
  "i64",
  "f64",
] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
/** The types an array may hold (llama.cpp refuses arrays of arrays, and so does lorakit). */
export type GgufScalarType = Exclude<GgufValueType, "array">;

/** Bytes of one value of a fixed-size scalar type (strings: 0, they are length-prefixed). */
export const GGUF_SCALAR_BYTES: Record<GgufScalarType, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  string: 0,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** A typed metadata value. 64-bit integers are bigints; arrays keep their element type. */
export type GgufValue =
  | { type: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; value: number }
  | { type: "u64" | "i64"; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: GgufScalarType; value: (number | bigint | boolean | string)[] };

/** One tensor as the file describes it. */
export interface GgufTensorInfo {
  name: string;
  /** ne, in ggml order (ne[0] = row length). */
  shape: number[];
  type: GgmlTypeInfo;
  /** Offset of the data from the start of the data section. */
  offset: number;
  byteLength: number;
}

/** A parsed header: everything before the tensor data. */
export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset of the data section. */
  dataStart: number;
}

/** Unwraps a metadata value for reading: numbers, bigints, booleans, strings, or an array of them. */
export function ggufPlain(v: GgufValue | undefined): unknown {
  return v?.value;
}
