// lorakit/model: the browser-safe transformer runtime (load from parsed files, attach adapters, generate).
// Folder loading lives in lorakit/node (loadModelDir, attachAdapterDir).

export { AdapterCache, type AdapterCacheOptions } from "./adapter-cache.js";
export type { AdapterInfo, AttachOptions, RuntimeAdapter } from "./adapters.js";
export { MODEL_TYPES, type ModelConfig, type ModelType, parseModelConfig } from "./config.js";
export { type GenerateOptions, type GenerateRequest, generate, generateAll, type TokenEvent } from "./generate.js";
export { type GgufModelFile, ggufModelConfig, ggufTensorFile, loadGgufModel } from "./gguf-base.js";
export { KvCache } from "./kv-cache.js";
export { CausalLM, type ForwardOptions, type SequenceStep } from "./model.js";
export { argmax, readSampling, type Sampling, type SamplingOptions, sampleToken } from "./sampling.js";
export { loadTokenizer, type TextTokenizer } from "./tokenizer.js";
export type { TensorSource } from "./weights.js";
