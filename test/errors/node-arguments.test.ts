// lorakit/node entry points called from JavaScript with the wrong kind of value where a path, an adapter, options
// or files belong: each answers with a LoraError naming the function and the argument. Before, they threw Node's
// own "The "path" argument must be of type string", raw TypeErrors from inside (ggufHeads, mergeAdapterIntoModel,
// startServer) or a raw ENOENT (convertModelToGguf without config.json), and nothing is written by a refused call.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  convertModelToGguf,
  ggufHeads,
  loadMlxAdapterDir,
  loadPeftAdapterDir,
  makeFolder,
  mergeAdapterIntoGguf,
  mergeAdapterIntoModel,
  openGguf,
  startServer,
  writeFileAtomic,
  writeFilesAtomic,
  writeFolderAtomic,
  writeGgufFile,
} from "../../src/node/index.js";
import { loraError } from "../helpers/errors.js";

const dir = mkdtempSync(join(tmpdir(), "lorakit-node-args-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const path = (op: string, name: string, shown: string) =>
  `${op}: ${name} is ${shown}, expected a path (a non-empty string without NUL characters)`;
const ADAPTER = "expected a loaded adapter { format, modules } (loadPeftAdapter, loadMlxAdapter)";
const CHUNKS = "expected a Uint8Array or an (async) iterable of Uint8Array chunks";
const bytes = new Uint8Array([1]);

describe("lorakit/node arguments", () => {
  it.each([
    ["openGguf", () => openGguf(null as never), path("openGguf", "path", "null")],
    ["loadPeftAdapterDir", () => loadPeftAdapterDir(null as never), path("loadPeftAdapterDir", "dir", "null")],
    ["loadMlxAdapterDir", () => loadMlxAdapterDir(undefined as never), path("loadMlxAdapterDir", "dir", "undefined")],
    ["makeFolder", () => makeFolder(5 as never, "train"), path("train", "dir", "a number")],
    ["writeGgufFile (path)", () => writeGgufFile(null as never, new Map(), []), path("writeGgufFile", "path", "null")],
    [
      "writeGgufFile (tensors)",
      () =>
        writeGgufFile(join(dir, "t.gguf"), new Map(), [{ name: "a", shape: [1], type: "F32", data: null as never }]),
      "writeGgufFile: tensors[0].data is null, expected a function giving the tensor's bytes",
    ],
    [
      "convertModelToGguf",
      () => convertModelToGguf(dir, 5 as never),
      path("convertModelToGguf", "outPath", "a number"),
    ],
    [
      "ggufHeads (f)",
      () => ggufHeads(null as never, "llama"),
      "ggufHeads: f is null, expected an open GGUF file or header { metadata: Map }",
    ],
    [
      "ggufHeads (arch)",
      () => ggufHeads({ metadata: new Map() }, 5 as never),
      "ggufHeads: arch is 5, expected an architecture name (a string)",
    ],
    [
      "mergeAdapterIntoGguf (adapter)",
      () => mergeAdapterIntoGguf("b.gguf", null as never, { out: "x" }),
      `mergeAdapterIntoGguf: adapter is null, ${ADAPTER}`,
    ],
    [
      "mergeAdapterIntoGguf (options)",
      () => mergeAdapterIntoGguf("b.gguf", { modules: [] }, null as never),
      "mergeAdapterIntoGguf: options is null, expected { out }",
    ],
    [
      "mergeAdapterIntoModel (options)",
      () => mergeAdapterIntoModel("b", { modules: [] } as never, null as never),
      "mergeAdapterIntoModel: options is null, expected { out, dtype? }",
    ],
    [
      "mergeAdapterIntoModel (adapter)",
      () => mergeAdapterIntoModel("b", undefined as never, { out: "x" }),
      `mergeAdapterIntoModel: adapter is undefined, ${ADAPTER}`,
    ],
    [
      "writeFileAtomic (data)",
      () => writeFileAtomic(join(dir, "f"), null as never),
      `writeFileAtomic: data is null, ${CHUNKS}`,
    ],
    ["writeFileAtomic (path)", () => writeFileAtomic(null as never, bytes), path("writeFileAtomic", "path", "null")],
    [
      "writeFolderAtomic (files)",
      () => writeFolderAtomic(join(dir, "folder"), null as never),
      "writeFolderAtomic: files is null, expected an iterable of { name, data }",
    ],
    [
      "writeFolderAtomic (a name with a folder in it)",
      () => writeFolderAtomic(join(dir, "folder"), [{ name: "../evil", data: bytes }]),
      'writeFolderAtomic: files[0].name is "../evil", expected a file name (no folder separators)',
    ],
    [
      "writeFilesAtomic (data)",
      () => writeFilesAtomic(join(dir, "files"), [{ name: "a", data: 5 as never }]),
      `writeFilesAtomic: files[0].data is 5, ${CHUNKS}`,
    ],
    [
      "writeFilesAtomic (options)",
      () => writeFilesAtomic(join(dir, "files"), [], { op: 5 as never }),
      "writeFilesAtomic: options.op is 5, expected a string",
    ],
    [
      "startServer (options)",
      () => startServer(null as never),
      "startServer: options is null, expected { engine, modelName, … }",
    ],
    [
      "startServer (engine)",
      () => startServer({ engine: {} as never, modelName: "m" }),
      "startServer: options.engine is an object, expected an Engine (openModelEngine, ModelEngine)",
    ],
  ])("%s: invalid_argument naming it", async (_, f, message) => {
    const e = await loraError(f, "invalid_argument");
    expect(e.message).toBe(message);
  });

  it("refused writes leave nothing behind", () => {
    expect(existsSync(join(dir, "folder"))).toBe(false);
    expect(existsSync(join(dir, "files"))).toBe(false);
    expect(existsSync(join(dir, "f"))).toBe(false);
  });

  it("convertModelToGguf: a folder without config.json, or with one that is not a JSON object, is named", async () => {
    const none = await loraError(() => convertModelToGguf(dir, join(dir, "m.gguf")), "missing_file");
    expect(none.message).toBe(
      `convertModelToGguf: ${join(dir, "config.json")} does not exist (a Hugging Face model folder needs config.json)`,
    );
    writeFileSync(join(dir, "config.json"), "[1, 2]");
    const notObject = await loraError(() => convertModelToGguf(dir, join(dir, "m.gguf")), "invalid_config");
    expect(notObject.message).toBe(
      `convertModelToGguf: ${join(dir, "config.json")}: expected a JSON object (path: <root>)`,
    );
    writeFileSync(join(dir, "config.json"), "{ nope");
    const broken = await loraError(() => convertModelToGguf(dir, join(dir, "m.gguf")), "invalid_config");
    expect(broken.message).toMatch(/^convertModelToGguf: .*config\.json: malformed JSON \(/);
    expect(existsSync(join(dir, "m.gguf"))).toBe(false);
  });
});
