// Types of random-model.mjs (random causal LMs and PEFT adapters for tests and benchmarks).

export interface TensorEntry {
  shape: number[];
  data: Float32Array;
}
export interface RandomModel {
  config: Record<string, unknown>;
  tensors: Map<string, TensorEntry>;
}
export interface RandomModelSpec {
  type: "llama" | "mistral" | "qwen2" | "gpt2";
  hidden: number;
  layers: number;
  heads: number;
  kvHeads?: number;
  vocab: number;
  positions: number;
  intermediate?: number;
  tie?: boolean;
  seed?: number;
}
export const PRESETS: Record<string, Partial<RandomModelSpec>>;
export function randomModel(spec: RandomModelSpec): RandomModel;
export function randomPeftAdapter(
  model: RandomModel,
  modules: string[],
  r: number,
  seed: number,
): { config: Record<string, unknown>; tensors: Map<string, TensorEntry> };
export function toSafetensors(tensors: Map<string, TensorEntry>): Uint8Array;
export function writeModel(dir: string, model: RandomModel): void;
export function writeAdapter(
  dir: string,
  adapter: { config: Record<string, unknown>; tensors: Map<string, TensorEntry> },
): void;
