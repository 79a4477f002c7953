// lorakit's browser-safe entry: public re-exports only. Node-only helpers live behind "lorakit/node".

export {
  AdapterFormatError,
  AdapterStateError,
  ArgumentError,
  ConfigError,
  type ConfigIssue,
  type ErrorCode,
  KernelError,
  LoraError,
  SafetensorsError,
  ShapeError,
} from "./errors.js";
export { gemmReference, loraReference } from "./kernels/reference.js";
export {
  configureKernels,
  initKernels,
  type KernelInfo,
  type KernelOptions,
  kernelFloat32Array,
  kernelInfo,
} from "./kernels/select.js";
export { explainLoraForward, type LoraExplanation } from "./lora/explain.js";
export { formatMatrix, formatNumber, type RenderOptions, renderExplanation } from "./lora/explain-text.js";
export { type LoraForwardOptions, type LowRank, loraForward, lowRankForward } from "./lora/forward.js";
export { type MatmulOptions, matmul } from "./lora/matmul.js";
export type { MatrixInput } from "./lora/operand.js";
export { type ScalingRule, scalingFor } from "./lora/variants.js";
export type { FloatArray, Matrix, TensorLike } from "./matrix.js";
