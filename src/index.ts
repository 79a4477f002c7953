// lorakit's browser-safe entry: public re-exports only. Node-only helpers live behind "lorakit/node".

export {
  AdapterFormatError,
  AdapterStateError,
  ArgumentError,
  ConfigError,
  type ConfigIssue,
  type ErrorCode,
  LoraError,
  SafetensorsError,
  ShapeError,
} from "./errors.js";
export {
  DECODABLE_DTYPES,
  type DecodeOptions,
  DTYPE_BITS,
  decodeBf16,
  decodeBf16Array,
  decodeF16,
  decodeF16Array,
  decodeToFloat32,
  decodeToFloat64,
  dtypeAlignment,
  encodeBf16,
  encodeBf16Array,
  encodeF16,
  encodeF16Array,
  encodeTensorData,
  isSafetensorsDtype,
  MAX_HEADER_BYTES,
  type ParsedSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  type SafetensorsDtype,
  type SafetensorsHeader,
  type SafetensorsLayout,
  serializeSafetensors,
  serializeSafetensorsHeader,
  type TensorData,
  type TensorInfo,
  type TensorSpec,
  type TensorToWrite,
} from "./io/safetensors.js";
export { gemmReference, loraReference } from "./kernels/reference.js";
export { explainLoraForward, type LoraExplanation } from "./lora/explain.js";
export { formatMatrix, formatNumber, type RenderOptions, renderExplanation } from "./lora/explain-text.js";
export { type LoraForwardOptions, type LowRank, loraForward, lowRankForward } from "./lora/forward.js";
export type { MatrixInput } from "./lora/operand.js";
export { type ScalingRule, scalingFor } from "./lora/variants.js";
export type { FloatArray, Matrix, TensorLike } from "./matrix.js";
