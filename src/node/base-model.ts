// A base model as merge and inspect read it: one .safetensors file, or a sharded checkpoint (a folder or its
// model.safetensors.index.json naming the shard files). Only headers are read on open; tensors are read one at a
// time from the shard that holds them.

import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { AdapterFormatError, SafetensorsError } from "../errors.js";
import type { TensorInfo } from "../io/safetensors.js";
import { parseSafetensorsIndex, SAFETENSORS_INDEX_NAME } from "../io/safetensors-index.js";
import { requirePath } from "./path-arg.js";
import { openSafetensors, type SafetensorsFile } from "./safetensors-file.js";

/** One shard (or the only file) of a base model. */
export interface BaseShard {
  /** File name, as written in the index (or the file's own name when not sharded). */
  name: string;
  file: SafetensorsFile;
}

/** An open base model. */
export interface BaseModel {
  /** The path given. */
  path: string;
  /** The file it resolved to: the .safetensors file or the index (its folder holds config.json, when there is one). */
  file: string;
  isSharded: boolean;
  /** Every tensor of every shard, by name. */
  tensors: Map<string, TensorInfo>;
  /** Shards in index order (file names sorted), each with its open file. */
  shards: BaseShard[];
  /** Tensor name → its shard. */
  shardOf: Map<string, BaseShard>;
  /** The index's metadata (sharded) or {}. */
  indexMetadata: Record<string, unknown>;
  /** The files and folders this model is read from (to refuse writing over them). */
  inputs: string[];
  close(): Promise<void>;
}

/** Finds what `path` names: a safetensors file, an index file, or a folder holding either. */
async function locate(path: string, op: string): Promise<{ file: string; isIndex: boolean }> {
  const st = await stat(path);
  if (!st.isDirectory()) return { file: path, isIndex: path.endsWith(".json") };
  for (const [name, isIndex] of [
    [SAFETENSORS_INDEX_NAME, true],
    ["model.safetensors", false],
  ] as const) {
    const file = join(path, name);
    if ((await stat(file).catch(() => undefined))?.isFile()) return { file, isIndex };
  }
  throw new AdapterFormatError(
    "missing_file",
    `${op}: folder ${path} has neither ${SAFETENSORS_INDEX_NAME} nor model.safetensors`,
    { path },
  );
}

/**
 * Opens a base model: a .safetensors file, a model.safetensors.index.json, or a folder with either. Every shard's
 * header is validated and checked against the index before anything else is read. Close it when done.
 * @throws {SafetensorsError} the reader's codes; "invalid_index" when the index and the shards disagree
 * @throws {AdapterFormatError} "missing_file" for a folder with no model in it
 */
export async function openBaseModel(path: string, op = "openBaseModel"): Promise<BaseModel> {
  requirePath(op, "path", path);
  const { file, isIndex } = await locate(path, op);
  const shards: BaseShard[] = [];
  const close = async () => {
    for (const s of shards) await s.file.close();
  };
  try {
    if (!isIndex) {
      const f = await openSafetensors(file);
      const shard = { name: basename(file), file: f };
      shards.push(shard);
      const shardOf = new Map([...f.header.tensors.keys()].map((n) => [n, shard]));
      return {
        path,
        file,
        isSharded: false,
        tensors: f.header.tensors,
        shards,
        shardOf,
        indexMetadata: {},
        inputs: [file],
        close,
      };
    }
    const dir = dirname(file);
    const index = parseSafetensorsIndex(await readFile(file, "utf8"), `${op}: ${file}`);
    const tensors = new Map<string, TensorInfo>();
    const shardOf = new Map<string, BaseShard>();
    for (const name of index.shards) {
      const shard = { name, file: await openSafetensors(join(dir, name)) };
      shards.push(shard);
      for (const [t, info] of shard.file.header.tensors) {
        const other = shardOf.get(t);
        if (other) throw indexError(op, file, `tensor "${t}" is in both ${other.name} and ${name}`, t);
        tensors.set(t, info);
        shardOf.set(t, shard);
      }
    }
    for (const [t, name] of index.weightMap) {
      const holder = shardOf.get(t);
      if (holder?.name !== name) {
        const where = holder ? `it is in ${holder.name}` : "no shard has it";
        throw indexError(op, file, `the index maps tensor "${t}" to ${name} but ${where}`, t);
      }
    }
    for (const [t, shard] of shardOf) {
      if (!index.weightMap.has(t))
        throw indexError(op, file, `the index does not list tensor "${t}" of ${shard.name}`, t);
    }
    const inputs = [dir, file, ...shards.map((s) => join(dir, s.name))];
    return { path, file, isSharded: true, tensors, shards, shardOf, indexMetadata: index.metadata, inputs, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function indexError(op: string, file: string, what: string, tensor: string): SafetensorsError {
  return new SafetensorsError("invalid_index", `${op}: ${file}: ${what}`, { path: file, tensor });
}
