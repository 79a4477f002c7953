// lorakit's browser-safe entry: public re-exports only. Node-only helpers live behind "lorakit/node".

export {
  AdapterFormatError,
  AdapterStateError,
  ArgumentError,
  ConfigError,
  type ConfigIssue,
  type ErrorCode,
  FileWriteError,
  GgufError,
  KernelError,
  LoraError,
  ModelError,
  SafetensorsError,
  ServeError,
  ShapeError,
  TorchFileError,
} from "./errors.js";
export {
  decodeGgmlTensor,
  dequantizeQ4_0,
  dequantizeQ8_0,
  encodeGgmlTensor,
  quantizeQ4_0,
  quantizeQ8_0,
} from "./io/ggml-quant.js";
export {
  GGUF_DEFAULT_ALIGNMENT,
  type GgufLayout,
  type GgufTensorToWrite,
  ggufElements,
  type ParsedGguf,
  parseGguf,
  parseGgufHeader,
  serializeGguf,
  serializeGgufHeader,
} from "./io/gguf.js";
export {
  type AdapterToGgufOptions,
  adapterToGguf,
  type GgufLoraAdapter,
  ggufToAdapter,
  modulesToPeft,
} from "./io/gguf-lora.js";
export { type GgufModelDtype, type GgufModelPlan, type GgufModelTensor, planGgufModel } from "./io/gguf-model.js";
export {
  type AttentionHeads,
  GGUF_ARCHITECTURES,
  type GgufArchitecture,
  ggufArchitectureOf,
  ggufNameOf,
  hfModuleOf,
} from "./io/gguf-names.js";
export {
  type GgmlCodedType,
  type GgmlTypeInfo,
  type GgufHeader,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueType,
  ggmlTypeById,
  ggmlTypeByName,
} from "./io/gguf-types.js";
export {
  loadMlxAdapter,
  type MlxAdapter,
  type MlxLoadOptions,
  type MlxScalingRule,
  mlxScalingRule,
} from "./io/mlx-adapter.js";
export {
  type AdapterToOnnxOptions,
  adapterToOnnx,
  type OnnxAdapter,
  type OnnxAdapterModule,
  type OnnxAdapterParameter,
  onnxAdapterModules,
  onnxParameterToFloat32,
  parseOnnxAdapter,
  serializeOnnxAdapter,
} from "./io/onnx-adapter.js";
export {
  type AdapterDtype,
  isMlxConfig,
  loadPeftAdapter,
  type PeftAdapter,
  type PeftAdapterFiles,
  type PeftModuleAdapter,
  type SavedTensor,
} from "./io/peft-adapter.js";
export {
  moduleHyperparams,
  type ParsedPeftConfig,
  PEFT_DEFAULTS,
  type PeftConfig,
  parsePeftConfig,
  patternKeyFor,
  peftScaling,
  targetsModule,
} from "./io/peft-config.js";
export { loraLinearForModule, type ModuleBase } from "./io/peft-layer.js";
export { type SavedPeftAdapter, type SavePeftOptions, savePeftAdapter } from "./io/peft-save.js";
export { DEFAULT_TASK_HEADS, type SavedRole, savedByModulesToSave } from "./io/peft-saved.js";
export { quantizeMatrix } from "./io/quant-matrix.js";
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
export {
  parseSafetensorsIndex,
  SAFETENSORS_INDEX_NAME,
  type SafetensorsIndex,
  serializeSafetensorsIndex,
} from "./io/safetensors-index.js";
export {
  looksLikeTorchFile,
  parseTorchFile,
  type ReadTorchFileOptions,
  readTorchFile,
  type TorchFile,
  type TorchTensorView,
  torchFileToSafetensors,
} from "./io/torch-file.js";
export { PANEL, packPanels, panelLength, unpackPanels } from "./kernels/panel.js";
export {
  gemmReference,
  type LoraReference,
  loraErrorBound,
  loraReference,
  UNIT_ROUNDOFF,
} from "./kernels/reference.js";
export {
  configureKernels,
  initKernels,
  type KernelInfo,
  type KernelOptions,
  kernelBytes,
  kernelFloat32Array,
  kernelInfo,
  releaseKernelArray,
} from "./kernels/select.js";
export type { AdapterOptions, GivenAdapterOptions, NewAdapterOptions } from "./lora/adapter.js";
export { type LoraGradients, loraBackward } from "./lora/backward.js";
export type { WeightLayout } from "./lora/base.js";
export type { Combination } from "./lora/combine.js";
export { explainLoraForward, type LoraExplanation } from "./lora/explain.js";
export { formatMatrix, formatNumber, type RenderOptions, renderExplanation } from "./lora/explain-text.js";
export { type LoraForwardOptions, type LowRank, loraForward, lowRankForward } from "./lora/forward.js";
export { gaussian, type InitKind, kaimingUniform, zeros } from "./lora/init.js";
export {
  type AdapterInfo,
  LoraLinear,
  type LoraLinearOptions,
  type MergeReport,
  type Parameter,
} from "./lora/layer.js";
export { type MatmulOptions, matmul } from "./lora/matmul.js";
export { deltaWeight, type MergeOptions, mergeAdapter, safeMerge, unmergeAdapter } from "./lora/merge.js";
export type { MatrixInput } from "./lora/operand.js";
export { dequantizeMatrix, type QuantMatrix, type QuantType } from "./lora/quant.js";
export { createRng, type Rng } from "./lora/rng.js";
export { type LoraVariant, type ScalingRule, scalingFor } from "./lora/variants.js";
export type { FloatArray, Matrix, TensorLike } from "./matrix.js";
export { MAX_RESULT_ELEMENTS } from "./shape.js";
export { type ActivationName, Gelu, Relu } from "./train/activation.js";
export { type Dataset, gatherBatch, makeSpiralTask, type SpiralTask, type SpiralTaskOptions } from "./train/data.js";
export {
  DEMO_CONFIG,
  type DemoOptions,
  type DemoProgress,
  type DemoResult,
  type DemoRow,
  runLoraDemo,
  withLora,
} from "./train/demo.js";
export { Linear, type LinearOptions } from "./train/linear.js";
export {
  evaluateClassifier,
  type StepInfo,
  type TrainOptions,
  type TrainResult,
  trainClassifier,
} from "./train/loop.js";
export { argmaxRows, type LossResult, meanSquaredError, softmaxCrossEntropy } from "./train/loss.js";
export { Mlp, type MlpInitOptions } from "./train/mlp.js";
export { applyLoraModules, loraModules, mlpFromSafetensors, mlpToSafetensors } from "./train/mlp-files.js";
export type { Module, ParamRole, TrainParam } from "./train/module.js";
export { AdamW, type AdamWOptions, clipGradNorm, cosineFactor } from "./train/optim.js";
export { lossCurveSvg, type PlotOptions, type PlotSeries } from "./train/plot.js";
export { deriveSeed, permutation } from "./train/shuffle.js";
