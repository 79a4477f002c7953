// The playground page: reads x, W, B, A, alpha and the rsLoRA toggle, runs lorakit's explainLoraForward on
// every edit and shows the output, the five steps, heatmaps and the library's errors. Uses lorakit's public
// exports only.

import {
  explainLoraForward,
  initKernels,
  LoraError,
  type LoraExplanation,
  renderExplanation,
  type ScalingRule,
} from "lorakit";
import { countParams, formatCount, formatPercent, formatRatio, readPositiveInt } from "./calculator.js";
import { EXAMPLES, type Example } from "./examples.js";
import { explanationSteps, matrixElement, scalingLine } from "./explain-view.js";
import { heatmap } from "./heatmap.js";
import { formatMatrixText, InputSyntaxError, parseMatrix, parseScalar } from "./parse.js";

const MATRICES = ["x", "W", "B", "A"] as const;
type MatrixField = (typeof MATRICES)[number];

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`playground: #${id} is missing from index.html`);
  return node as T;
}

const inputs = Object.fromEntries(MATRICES.map((f) => [f, byId<HTMLTextAreaElement>(`input-${f}`)])) as Record<
  MatrixField,
  HTMLTextAreaElement
>;
const alphaInput = byId<HTMLInputElement>("input-alpha");
const rsloraInput = byId<HTMLInputElement>("input-rslora");
const errorBox = byId("error");
let current: LoraExplanation | null = null;

function shapeText(v: unknown): string {
  if (!Array.isArray(v)) return "";
  const cols = new Set(v.map((row) => (Array.isArray(row) ? row.length : -1)));
  if (cols.size > 1 || cols.has(-1)) return `[${v.length}, ?]`;
  return `[${v.length}, ${v.length === 0 ? 0 : [...cols][0]}]`;
}

function identity(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

function clearError(): void {
  errorBox.hidden = true;
  errorBox.replaceChildren();
  for (const node of document.querySelectorAll(".field.invalid")) node.classList.remove("invalid");
  document.body.classList.remove("has-error");
}

function showError(kind: string, code: string, message: string, field: string | undefined): void {
  const head = document.createElement("div");
  head.className = "err-head";
  const name = document.createElement("strong");
  name.className = "err-class";
  name.textContent = kind;
  head.append(name);
  if (code) {
    const c = document.createElement("code");
    c.className = "err-code";
    c.textContent = code;
    head.append(c);
  }
  const msg = document.createElement("p");
  msg.className = "err-message";
  msg.textContent = message;
  errorBox.replaceChildren(head, msg);
  errorBox.hidden = false;
  document.body.classList.add("has-error");
  if (field) document.querySelector(`.field[data-field="${field}"]`)?.classList.add("invalid");
}

function render(e: LoraExplanation, merged: LoraExplanation): void {
  current = e;
  const h = e.combined.output;
  const out = byId("output");
  out.replaceChildren(matrixElement(h));
  out.dataset.json = JSON.stringify(h);
  byId("shape-h").textContent = `[${e.dims.n}, ${e.dims.dOut}]`;
  byId("scaling-summary").textContent = `r = ${e.dims.r}, ${scalingLine(e)}`;
  byId("steps").replaceChildren(...explanationSteps(e));
  byId("explanation-text").textContent = renderExplanation(e);
  byId("heatmaps").replaceChildren(
    heatmap("W", "frozen weight", e.inputs.W),
    heatmap("B · A", "implied update", merged.lowRank.xBA),
    heatmap("W + s · B · A", "merged weight", merged.combined.output),
    heatmap("h", "output", h),
  );
}

function update(): void {
  clearError();
  const values: Partial<Record<MatrixField, unknown>> = {};
  try {
    for (const f of MATRICES) {
      values[f] = undefined;
      byId(`shape-${f}`).textContent = "";
      values[f] = parseMatrix(f, inputs[f].value);
      byId(`shape-${f}`).textContent = shapeText(values[f]);
    }
    const alpha = parseScalar("alpha", alphaInput.value) as number;
    const options = { scaling: (rsloraInput.checked ? "rslora" : "standard") as ScalingRule };
    const e = explainLoraForward(values.x, values.W, values.B, values.A, alpha, options);
    // x = I gives I·B·A = B·A and I·W + s·B·A = W + s·B·A: the update and the merged weight, for display.
    const merged = explainLoraForward(identity(e.dims.dIn), e.inputs.W, e.inputs.B, e.inputs.A, alpha, options);
    render(e, merged);
  } catch (err) {
    if (err instanceof LoraError) {
      const field = typeof err.details.name === "string" ? err.details.name : undefined;
      showError(err.name, err.code, err.message, field);
    } else if (err instanceof InputSyntaxError) {
      showError("Input", "", err.message, err.field);
    } else {
      throw err;
    }
  }
}

/** Grows a text box with its number of rows, between 2 and 10 lines. */
function fitRows(box: HTMLTextAreaElement): void {
  box.rows = Math.min(10, Math.max(2, box.value.split("\n").length));
}

function loadExample(ex: Example): void {
  for (const f of MATRICES) {
    inputs[f].value = formatMatrixText(ex[f]);
    fitRows(inputs[f]);
  }
  alphaInput.value = String(ex.alpha);
  markExample(ex.id);
  update();
}

function markExample(id: string | null): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>("#examples button")) {
    b.setAttribute("aria-pressed", String(b.dataset.example === id));
  }
}

function setupExamples(): void {
  const box = byId("examples");
  const label = document.createElement("span");
  label.className = "examples-label";
  label.textContent = "Examples";
  box.append(label);
  for (const ex of EXAMPLES) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = ex.id === "bad" ? "chip chip-bad" : "chip";
    b.dataset.example = ex.id;
    b.textContent = ex.label;
    b.addEventListener("click", () => loadExample(ex));
    box.append(b);
  }
}

function setupCalculator(): void {
  const din = byId<HTMLInputElement>("calc-din");
  const dout = byId<HTMLInputElement>("calc-dout");
  const r = byId<HTMLInputElement>("calc-r");
  const err = byId("calc-error");
  const recompute = () => {
    const vals = [
      readPositiveInt("dIn", din.value),
      readPositiveInt("dOut", dout.value),
      readPositiveInt("r", r.value),
    ];
    const bad = vals.find((v) => typeof v === "string");
    byId("calc-bars").classList.toggle("stale", bad !== undefined);
    err.hidden = bad === undefined;
    err.textContent = typeof bad === "string" ? bad : "";
    if (bad !== undefined) return;
    const [a, b, c] = vals as [number, number, number];
    const p = countParams(a, b, c);
    const top = Math.max(p.lora, p.full);
    byId("calc-bar-lora").style.width = `${(100 * p.lora) / top}%`;
    byId("calc-bar-full").style.width = `${(100 * p.full) / top}%`;
    byId("calc-lora").textContent = `${formatCount(p.lora)} (${formatPercent(p.fraction)})`;
    byId("calc-full").textContent = formatCount(p.full);
    byId("calc-summary").textContent =
      p.lora < p.full
        ? `LoRA trains ${formatPercent(p.fraction)} of the parameters of full fine-tuning: ${formatRatio(p.full / p.lora)}× fewer.`
        : `At r = ${c}, LoRA has at least as many parameters as W itself; LoRA pays off when r < dIn·dOut / (dIn + dOut).`;
  };
  for (const node of [din, dout, r]) node.addEventListener("input", recompute);
  byId("calc-use-current").addEventListener("click", () => {
    if (!current) return;
    din.value = String(current.dims.dIn);
    dout.value = String(current.dims.dOut);
    r.value = String(current.dims.r);
    recompute();
  });
  recompute();
}

function setupStatus(): void {
  const isolated = globalThis.crossOriginIsolated === true;
  const status = byId("status");
  status.dataset.isolated = String(isolated);
  status.textContent = `crossOriginIsolated: ${isolated} · ${isolated ? "SharedArrayBuffer available, threads possible" : "single-threaded"}`;
  // the kernels (and, when isolated, their Web Workers) start in the background; the page works meanwhile
  void initKernels().then((info) => {
    status.dataset.threads = String(info.threads);
    status.textContent = `crossOriginIsolated: ${isolated} · kernels: ${info.backend}, ${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  });
}

setupStatus();
setupExamples();
setupCalculator();
for (const node of [...Object.values(inputs), alphaInput]) {
  node.addEventListener("input", () => {
    if (node instanceof HTMLTextAreaElement) fitRows(node);
    markExample(null);
    update();
  });
}
rsloraInput.addEventListener("change", update);
loadExample(EXAMPLES[0]!);
document.body.dataset.ready = "true";
