// GGUF files on disk: openGguf reads the header in growing prefixes (a vocabulary can make it megabytes) and then
// only the tensors asked for; writeGgufFile streams the header and one tensor at a time into a temporary file and
// renames it (writeFileAtomic); convertModelToGguf turns a Hugging Face folder into a llama.cpp base model.

import { type FileHandle, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { AdapterFormatError, ConfigError, GgufError } from "../errors.js";
import { invalidArgument, optionsArg } from "../io/format-args.js";
import { decodeGgmlTensor, encodeGgmlTensor } from "../io/ggml-quant.js";
import {
  type GgufTensorToWrite,
  ggufElements,
  ggufTensorLookup,
  parseGgufHeader,
  serializeGgufHeader,
} from "../io/gguf.js";
import { type GgufModelDtype, planGgufModel } from "../io/gguf-model.js";
import type { GgufHeader, GgufTensorInfo, GgufValue } from "../io/gguf-types.js";
import { requirePath } from "./path-arg.js";
import { openRegularFile, readRegularFile } from "./read-file.js";
import { openSafetensors, type SafetensorsFile, writeFileAtomic } from "./safetensors-file.js";

/** An open GGUF file: a validated header and on-demand tensor reads. */
export interface GgufFile extends GgufHeader {
  path: string;
  names(): string[];
  info(name: string): GgufTensorInfo;
  read(name: string): Promise<Uint8Array>;
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

const FIRST_READ = 1 << 20;

// The first `want` bytes of the file: those of `held` kept, only the rest read; shorter if the file shrank.
async function readPrefix(fh: FileHandle, held: Uint8Array, want: number): Promise<Uint8Array> {
  const buf = new Uint8Array(want);
  buf.set(held);
  let done = held.length;
  while (done < want) {
    const { bytesRead } = await fh.read(buf, done, want - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

/**
 * Opens a GGUF file and validates its header without reading tensor data. Close it when done.
 * @throws {GgufError} the parser's codes, with the path in the message
 */
export async function openGguf(path: string): Promise<GgufFile> {
  const op = `openGguf: ${path}`;
  const fh = await openRegularFile("openGguf", path, "a GGUF file");
  try {
    const size = (await fh.stat()).size;
    let want = Math.min(FIRST_READ, size);
    let buf: Uint8Array = new Uint8Array(0);
    let header: GgufHeader;
    for (;;) {
      buf = await readPrefix(fh, buf, want);
      try {
        header = parseGgufHeader(buf, size, op);
        break;
      } catch (e) {
        // the header goes on past what was read but within the file: read at least that far, or twice as much
        // (at most the whole file). Any other error, a tensor past the end of the file included, is final; so is a
        // file that ended before `want` (it shrank while being read).
        const readMore = e instanceof GgufError && e.code === "truncated_file" ? e.details.readMore : undefined;
        if (typeof readMore !== "number" || buf.length < want || buf.length >= size) throw e;
        want = Math.min(size, Math.max(buf.length * 2, readMore));
      }
    }
    const info = ggufTensorLookup(header, op);
    const read = async (name: string): Promise<Uint8Array> => {
      const t = info(name);
      const buf = new Uint8Array(t.byteLength);
      let done = 0;
      while (done < t.byteLength) {
        const { bytesRead } = await fh.read(buf, done, t.byteLength - done, header.dataStart + t.offset + done);
        if (bytesRead === 0)
          throw new GgufError("truncated_file", `${op}: file ended while reading "${name}"`, { name });
        done += bytesRead;
      }
      return buf;
    };
    return {
      ...header,
      path,
      names: () => header.tensors.map((t) => t.name),
      info,
      read,
      readFloat32: async (name) =>
        decodeGgmlTensor(info(name).type, await read(name), ggufElements(info(name)), op, name),
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** A tensor to stream: its bytes are produced when it is written. */
export interface GgufTensorSource extends Omit<GgufTensorToWrite, "data"> {
  data: () => Uint8Array | Promise<Uint8Array>;
}

/**
 * Writes a GGUF v3 file atomically, producing one tensor's bytes at a time.
 * @throws {GgufError} the writer's codes; "tensor_invalid_info" when a produced tensor has the wrong byte length
 */
export async function writeGgufFile(
  path: string,
  metadata: Record<string, GgufValue> | ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensorSource[],
): Promise<void> {
  requirePath("writeGgufFile", "path", path);
  if (!Array.isArray(tensors)) throw invalidArgument("writeGgufFile", "tensors", tensors, "an array of tensor sources");
  tensors.forEach((t, i) => {
    if (typeof (t as GgufTensorSource | null)?.data !== "function")
      throw invalidArgument("writeGgufFile", `tensors[${i}].data`, t?.data, "a function giving the tensor's bytes");
  });
  const layout = serializeGgufHeader(
    metadata,
    tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type })),
  );
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield layout.header;
    for (let i = 0; i < tensors.length; i++) {
      const { byteLength } = layout.tensors[i]!;
      const data = await tensors[i]!.data();
      if (data.length !== byteLength)
        throw new GgufError(
          "tensor_invalid_info",
          `writeGgufFile: tensor "${tensors[i]!.name}" produced ${data.length} bytes, expected ${byteLength}`,
          { name: tensors[i]!.name },
        );
      yield data;
      const pad = Math.ceil(byteLength / layout.alignment) * layout.alignment - byteLength;
      if (pad > 0) yield new Uint8Array(pad);
    }
  }
  await writeFileAtomic(path, chunks(), { op: "writeGgufFile" });
}

/** What convertModelToGguf wrote. */
export interface ModelConversionSummary {
  architecture: string;
  tensors: number;
  bytes: number;
  warnings: string[];
}

async function checkpointFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  const index = names.find((n) => n === "model.safetensors.index.json");
  if (index !== undefined) {
    const map = JSON.parse(await readFile(join(dir, index), "utf8")).weight_map as Record<string, string>;
    return [...new Set(Object.values(map))].map((f) => join(dir, f));
  }
  const files = names.filter((n) => n.endsWith(".safetensors")).sort();
  if (files.length === 0)
    throw new AdapterFormatError(
      "missing_file",
      `convertModelToGguf: ${dir} has no .safetensors file (and no model.safetensors.index.json)`,
      { dir },
    );
  return files.map((f) => join(dir, f));
}

/**
 * Converts a Hugging Face model folder (config.json + safetensors, sharded or not) into a llama.cpp GGUF base
 * model, streaming one tensor at a time.
 * @throws {GgufError} "unsupported_architecture", "unexpected_tensor"; FileWriteError from writing (writeFileAtomic's
 *   codes); errors reading the folder as Node raises them
 */
export async function convertModelToGguf(
  dir: string,
  outPath: string,
  options?: { dtype?: GgufModelDtype; name?: string },
): Promise<ModelConversionSummary> {
  requirePath("convertModelToGguf", "dir", dir);
  requirePath("convertModelToGguf", "outPath", outPath);
  options = optionsArg<{ dtype?: GgufModelDtype; name?: string }>(
    "convertModelToGguf",
    "options",
    options,
    "{ dtype?, name? }",
  );
  const config = await readModelConfig(join(dir, "config.json"));
  const files: SafetensorsFile[] = [];
  try {
    for (const f of await checkpointFiles(dir)) files.push(await openSafetensors(f));
    const where = new Map<string, SafetensorsFile>();
    const shapes = new Map<string, number[]>();
    for (const f of files)
      for (const n of f.names()) {
        where.set(n, f);
        shapes.set(n, [...f.info(n).shape]);
      }
    const tokPath = join(dir, "tokenizer.json");
    const names = await readdir(dir);
    const tokenizer = names.includes("tokenizer.json") ? JSON.parse(await readFile(tokPath, "utf8")) : undefined;
    const plan = planGgufModel(config, shapes, { ...options, tokenizer });
    const tensors: GgufTensorSource[] = plan.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: t.type,
      data: async () => encodeGgmlTensor(t.type, t.transform(await where.get(t.source)!.readFloat32(t.source))),
    }));
    await writeGgufFile(outPath, plan.metadata, tensors);
    return {
      architecture: plan.architecture,
      tensors: tensors.length,
      bytes: (await stat(outPath)).size,
      warnings: plan.warnings,
    };
  } finally {
    for (const f of files) await f.close();
  }
}

// config.json of the folder convertModelToGguf converts: a JSON object (planGgufModel reads its fields)
async function readModelConfig(path: string): Promise<Record<string, unknown>> {
  const op = "convertModelToGguf";
  const text = new TextDecoder().decode(
    await readRegularFile(op, path, "a Hugging Face model folder needs config.json"),
  );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${op}: ${path}`, [{ path: [], message: `malformed JSON (${(e as Error).message})` }]);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigError(`${op}: ${path}`, [{ path: [], message: "expected a JSON object" }]);
  return doc as Record<string, unknown>;
}
