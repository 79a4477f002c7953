// lorakit/node: helpers that need Node's file system. The only part of lorakit allowed to import node:*.

export { readJsonInput } from "./input.js";
export { openSafetensors, type SafetensorsFile, writeFileAtomic } from "./safetensors-file.js";
