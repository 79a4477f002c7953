// Parameter calculator: trainable parameters of one adapted weight W [dIn, dOut] with LoRA of rank r,
// r·(dIn + dOut) (B is [dIn, r], A is [r, dOut]), against full fine-tuning, dIn·dOut.

export interface ParamCount {
  lora: number;
  full: number;
  /** lora / full, as a fraction. */
  fraction: number;
}

/** Counts the trainable parameters; inputs must be positive integers. */
export function countParams(dIn: number, dOut: number, r: number): ParamCount {
  const lora = r * (dIn + dOut);
  const full = dIn * dOut;
  return { lora, full, fraction: lora / full };
}

/** Reads a positive integer from an input, or returns an error message naming it. */
export function readPositiveInt(name: string, text: string): number | string {
  const v = Number(text.trim());
  if (text.trim() === "" || !Number.isInteger(v) || v < 1) {
    return `${name} must be a positive integer, got ${JSON.stringify(text.trim())}`;
  }
  return v;
}

const fmt = new Intl.NumberFormat("en-US");
const pct1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const pct2 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** 1234567 → "1,234,567". */
export function formatCount(v: number): string {
  return fmt.format(v);
}

/** A ratio such as full / lora: one decimal below 10 (1.7), whole numbers with separators above (256, 1,024). */
export function formatRatio(ratio: number): string {
  return ratio < 10 ? pct1.format(ratio) : fmt.format(Math.round(ratio));
}

/** A fraction as a percentage with enough digits to be non-zero: 0.00390625 → "0.39%", 2 → "200%". */
export function formatPercent(fraction: number): string {
  const pct = fraction * 100;
  if (pct >= 10) return `${pct1.format(pct)}%`;
  if (pct >= 0.01) return `${pct2.format(pct)}%`;
  return `${pct.toPrecision(2)}%`;
}
