// lorakit/node: helpers that need Node's file system. The only part of lorakit allowed to import node:*.

export {
  loadAdapter,
  loadMlxAdapterDir,
  loadPeftAdapterDir,
  savePeftAdapterDir,
} from "./adapter-files.js";
export { architectureFromConfig, type BaseArchitecture, readBaseArchitecture } from "./conv1d.js";
export {
  convertModelToGguf,
  type GgufFile,
  type GgufTensorSource,
  type ModelConversionSummary,
  openGguf,
  writeGgufFile,
} from "./gguf-file.js";
export { type GgufMergeSummary, ggufHeads, mergeAdapterIntoGguf } from "./gguf-merge.js";
export { readJsonInput } from "./input.js";
export {
  type MergeableAdapter,
  type MergeDtype,
  type MergeOptions,
  type MergeProgress,
  type MergeSummary,
  mergeAdapterIntoModel,
} from "./merge.js";
export { attachAdapterDir, loadModelDir, type ModelDir } from "./model-files.js";
export { openSafetensors, type SafetensorsFile, writeFileAtomic } from "./safetensors-file.js";
