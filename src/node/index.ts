// lorakit/node: helpers that need Node's file system. The only part of lorakit allowed to import node:*.

export type { Engine, EngineInfo, StepEntry } from "../serve/engine.js";
export {
  loadAdapter,
  loadMlxAdapterDir,
  loadPeftAdapterDir,
  savePeftAdapterDir,
} from "./adapter-files.js";
export {
  type AtomicWriteOptions,
  type FileData,
  type FolderFile,
  makeFolder,
  type OpenFile,
  removeStaleTemporaries,
  writeFilesAtomic,
  writeFolderAtomic,
} from "./atomic-write.js";
export { type BaseModel, type BaseShard, openBaseModel } from "./base-model.js";
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
export { attachAdapterDir, loadGgufFile, loadModelDir, type ModelDir } from "./model-files.js";
export { openSafetensors, type SafetensorsFile, writeFileAtomic } from "./safetensors-file.js";
export { type OpenModelOptions, openModelEngine } from "./serve/model.js";
export { type RunningServer, type ServeOptions, startServer } from "./serve/server.js";
