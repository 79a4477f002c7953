// Child process for interrupt.test.ts: a merge whose writer stalls after its first chunk. It prints "writing" once
// the temporary file has data, then waits to be killed. argv: <base> <adapter dir> <out>. Uses the built package.
import { open } from "node:fs/promises";
import { loadAdapter, mergeAdapterIntoModel } from "../../dist/src/node/index.js";

const [base, adapterDir, out] = process.argv.slice(2);

async function stallingOpen(path, flags, mode) {
  const fh = await open(path, flags, mode);
  const write = fh.write.bind(fh);
  let isFirst = true;
  fh.write = async (...args) => {
    const result = await write(...args);
    if (isFirst) {
      isFirst = false;
      process.stdout.write("writing\n");
      await new Promise(() => {}); // never resolves: the merge is mid-write until a signal arrives
    }
    return result;
  };
  return fh;
}

const keepAlive = setInterval(() => {}, 60_000); // keeps the event loop alive while the write is stalled
const adapter = await loadAdapter(adapterDir);
await mergeAdapterIntoModel(base, adapter, { out, openFile: stallingOpen });
clearInterval(keepAlive); // reached only when the merge did not stall: the test then fails at once
