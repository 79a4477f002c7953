// Source of a kernel thread. It instantiates the shared-memory GEMM module on the pool's memory and serves jobs
// described in the control block (layout in pool.ts): announce itself (state 1, or −1 and a message when the
// module does not instantiate), then wait for a new generation, run its column range (or claim column chunks) if
// it is active in the job,
// count down `pending`, notify. Every wait has a timeout so a shutdown flag is seen; an exception is recorded in
// the control block (error slot + message) instead of escaping. Two preludes hand it module, memory, index and
// ctrlOffset: Node's workerData (run with `new Worker(source, { eval: true, workerData, execArgv: [] })`; it reaches
// worker_threads through process.getBuiltinModule, so it runs whether the host loads eval'd code as a CommonJS
// script or as an ES module, e.g. under --input-type=module in NODE_OPTIONS) and a browser Web Worker's first
// message (run from a Blob URL; it answers "ready" once serving, then blocks in Atomics.wait, which workers may do).
// The text must never contain the string "node" followed by a colon: the browser bundle inlines it.

const SERVE = `
function serve(make, memory, index, ctrlOffset, onReady, onFail) {
  const CTRL_INTS = 1024, MSG = 256, MSG_LEN = 256, STATE = 224, EVENTS = 20, START_FAILED = 21, START_MSG = 512;
  const ctrl = new Int32Array(memory.buffer, ctrlOffset, CTRL_INTS);
  const fctl = new Float32Array(memory.buffer, ctrlOffset, CTRL_INTS);
  let gemm;
  try {
    gemm = make();
  } catch (e) {
    const text = String(e && e.message ? e.message : e).slice(0, MSG_LEN - 1);
    if (Atomics.compareExchange(ctrl, START_FAILED, 0, index + 1) === 0) {
      for (let i = 0; i < text.length; i++) ctrl[START_MSG + i] = text.charCodeAt(i);
      ctrl[START_MSG + text.length] = 0;
    }
    Atomics.store(ctrl, STATE + index, -1);
    Atomics.add(ctrl, EVENTS, 1);
    Atomics.notify(ctrl, EVENTS);
    onFail(text);
    return;
  }
  // jobs of generations after this one are ours to look at; the caller counts only workers in state 1
  let seen = Atomics.load(ctrl, 0);
  Atomics.store(ctrl, STATE + index, 1);
  Atomics.add(ctrl, EVENTS, 1);
  Atomics.notify(ctrl, EVENTS);
  onReady();
  // after a job, poll for the next one for SPIN_MS before sleeping: a step of a model runs dozens of products a
  // fraction of a millisecond apart, and waking from Atomics.wait costs tens of microseconds each time
  const SPIN_MS = 0.25;
  let spinUntil = 0;
  for (;;) {
    if (Atomics.load(ctrl, 3) !== 0) break;
    const g = Atomics.load(ctrl, 0);
    if (g === seen) {
      if (performance.now() < spinUntil) continue;
      Atomics.wait(ctrl, 0, seen, 1000);
      continue;
    }
    seen = g;
    if (Atomics.load(ctrl, 3) !== 0) break;
    const s = 32 + 4 * index;
    const mode = ctrl[s + 3];
    if (mode !== 1 && mode !== 2) continue;
    try {
      if (mode === 1) {
        gemm(ctrl[4], ctrl[5], ctrl[6], ctrl[7], ctrl[8], ctrl[9], ctrl[10], ctrl[11], fctl[12], ctrl[13],
          ctrl[14], ctrl[15], ctrl[16], ctrl[s], ctrl[s + 1], ctrl[s + 2]);
      } else {
        // claim chunks (22: next, 23: count, 24: first column, 25: width, 26: end) until none is left
        for (let i = Atomics.add(ctrl, 22, 1); i < ctrl[23]; i = Atomics.add(ctrl, 22, 1)) {
          const j0 = ctrl[24] + i * ctrl[25];
          gemm(ctrl[4], ctrl[5], ctrl[6], ctrl[7], ctrl[8], ctrl[9], ctrl[10], ctrl[11], fctl[12], ctrl[13],
            ctrl[14], ctrl[15], ctrl[16], j0, Math.min(ctrl[26], j0 + ctrl[25]), ctrl[s + 2]);
        }
      }
    } catch (e) {
      if (Atomics.compareExchange(ctrl, 2, 0, index + 1) === 0) {
        const text = String(e && e.message ? e.message : e).slice(0, MSG_LEN - 1);
        for (let i = 0; i < text.length; i++) ctrl[MSG + i] = text.charCodeAt(i);
        ctrl[MSG + text.length] = 0;
      }
    }
    if (Atomics.sub(ctrl, 1, 1) === 1) Atomics.notify(ctrl, 1);
    spinUntil = performance.now() + SPIN_MS;
  }
}
`;

/** JavaScript source of one pool worker (Node worker_threads flavour; CommonJS or ES module evaluation alike). */
export const WORKER_SOURCE = `${SERVE}
const threads = typeof process === "object" && typeof process.getBuiltinModule === "function"
  ? process.getBuiltinModule("worker_threads")
  : require("worker_threads");
const { module, memory, index, ctrlOffset } = threads.workerData;
serve(() => new WebAssembly.Instance(module, { env: { memory } }).exports.gemm, memory, index, ctrlOffset,
  () => {}, () => {});
`;

/** JavaScript source of one pool worker (browser Web Worker flavour, started from a Blob URL). */
export const WEB_WORKER_SOURCE = `${SERVE}
self.onmessage = (event) => {
  self.onmessage = null;
  const { module, memory, index, ctrlOffset } = event.data;
  serve(() => new WebAssembly.Instance(module, { env: { memory } }).exports.gemm, memory, index, ctrlOffset,
    () => self.postMessage({ ready: true }), (text) => self.postMessage({ error: text }));
};
`;

/** The source for the tests that check a pool against a worker that never answers (either host). */
export const HANG_SOURCE = "setInterval(() => {}, 1000);";
