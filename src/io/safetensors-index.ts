// model.safetensors.index.json: how a sharded checkpoint (transformers' save_pretrained with max_shard_size) says
// which shard file holds each tensor:
//   {"metadata": {"total_size": <bytes of tensor data>, ...}, "weight_map": {"<tensor>": "<shard file name>", ...}}
// Shard names are plain file names in the index's folder (model-00001-of-00002.safetensors); anything with a path
// separator or ".." is refused, so an index cannot point outside its folder. Pure: no fs.

import { ArgumentError, SafetensorsError } from "../errors.js";

/** The usual name of the index file. */
export const SAFETENSORS_INDEX_NAME = "model.safetensors.index.json";

/** A parsed index: tensor → shard name, the shard names in sorted order and the metadata as written. */
export interface SafetensorsIndex {
  weightMap: Map<string, string>;
  shards: string[];
  metadata: Record<string, unknown>;
}

function invalid(op: string, message: string, details: Record<string, unknown> = {}): SafetensorsError {
  return new SafetensorsError("invalid_index", `${op}: ${message}`, details);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** True for a plain file name that stays in the index's folder. */
function isShardName(name: string): boolean {
  return name.length > 0 && !/[/\\\0]/.test(name) && name !== "." && name !== ".." && name.endsWith(".safetensors");
}

/**
 * Parses and checks a safetensors index (the JSON text of model.safetensors.index.json).
 * @throws {SafetensorsError} "invalid_index" when it is not JSON, has no weight_map object, maps a tensor to
 *   something other than a string, or names a shard that is not a plain `.safetensors` file name
 * @example parseSafetensorsIndex('{"weight_map": {"w": "model-00001-of-00001.safetensors"}}').shards
 */
export function parseSafetensorsIndex(text: string, op = "parseSafetensorsIndex"): SafetensorsIndex {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw invalid(op, `index is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(root) || !isObject(root.weight_map)) {
    throw invalid(op, `index has no "weight_map" object, expected {"metadata": {...}, "weight_map": {tensor: file}}`);
  }
  const metadata = root.metadata === undefined || root.metadata === null ? {} : root.metadata;
  if (!isObject(metadata)) throw invalid(op, `index "metadata" is not an object`);
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(root.weight_map)) {
    if (typeof shard !== "string" || !isShardName(shard)) {
      throw invalid(
        op,
        `index maps tensor ${JSON.stringify(tensor)} to ${JSON.stringify(shard)}, expected a .safetensors file name in the index's folder`,
        { tensor, shard },
      );
    }
    weightMap.set(tensor, shard);
  }
  if (weightMap.size === 0) throw invalid(op, `index "weight_map" is empty`);
  const shards = [...new Set(weightMap.values())].sort();
  return { weightMap, shards, metadata: { ...metadata } };
}

/**
 * The index of a sharded checkpoint written by lorakit: the given metadata with `total_size` (the bytes of tensor
 * data in all shards) and the weight map sorted by tensor name, as transformers writes it.
 */
export function serializeSafetensorsIndex(
  weightMap: ReadonlyMap<string, string>,
  totalSize: number,
  metadata: Record<string, unknown> = {},
): Uint8Array {
  const op = "serializeSafetensorsIndex";
  if (!(weightMap instanceof Map) || ![...weightMap].every(([k, v]) => typeof k === "string" && typeof v === "string"))
    throw new ArgumentError("invalid_argument", `${op}: weightMap must be a Map of tensor name → shard file name`, {
      name: "weightMap",
    });
  if (!Number.isSafeInteger(totalSize) || totalSize < 0)
    throw new ArgumentError("invalid_argument", `${op}: totalSize is ${String(totalSize)}, expected an integer ≥ 0`, {
      name: "totalSize",
    });
  const sorted = [...weightMap].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const doc = { metadata: { ...metadata, total_size: totalSize }, weight_map: Object.fromEntries(sorted) };
  return new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`);
}
