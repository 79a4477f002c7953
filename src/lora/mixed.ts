// Mixed-adapter batches (PEFT's adapter_names, the per-row adapter index of Punica/S-LoRA/vLLM): row i of
// x [n, dIn] uses adapter ids[i] (null = base only). The base product x·W runs once over all rows; rows sharing an
// adapter are gathered into one [g, dIn] block (a view when they are consecutive) and computed together by the
// variant's forward (gemm kernels), then scattered back. Each row gets the same operations as a single-adapter
// forward on that row alone.

import { AdapterStateError, ShapeError } from "../errors.js";
import type { FloatArray } from "../matrix.js";
import type { AdapterRecord } from "./adapter.js";
import { alloc } from "./base.js";
import type { VariantContext } from "./variants.js";

/** Validates adapterIds against x's rows and the layer, and groups the rows by adapter (first-seen order). */
export function groupRows(
  op: string,
  ids: unknown,
  n: number,
  lookup: (name: string) => AdapterRecord | undefined,
  merged: readonly string[],
): Map<AdapterRecord, number[]> {
  if (!Array.isArray(ids)) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: adapterIds must be an array with one adapter name (or null) per row of x`,
      {
        name: "adapterIds",
      },
    );
  }
  if (ids.length !== n) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: adapterIds has ${ids.length} entries, expected ${n} (one per row of x, which has ${n} rows)`,
      { name: "adapterIds", length: ids.length, expected: n },
    );
  }
  if (merged.length > 0) {
    throw new AdapterStateError(
      "adapter_state",
      `${op}: mixed-adapter batches are refused while adapters are merged (merged: ${merged.map((m) => `"${m}"`).join(", ")}); call unmerge() first`,
      { merged: [...merged] },
    );
  }
  const groups = new Map<AdapterRecord, number[]>();
  for (let i = 0; i < n; i++) {
    const id: unknown = ids[i];
    if (id === null) continue;
    const rec = typeof id === "string" ? lookup(id) : undefined;
    if (rec === undefined) {
      throw new AdapterStateError(
        "unknown_adapter",
        `${op}: adapterIds[${i}] is ${JSON.stringify(id)}, which is not an adapter of this layer`,
        {
          name: id,
          row: i,
        },
      );
    }
    if (!rec.variant.mixedBatch) {
      throw new AdapterStateError(
        "adapter_state",
        `${op}: adapterIds[${i}] is "${rec.name}", a ${rec.variant.name} adapter; mixed-adapter batches support plain LoRA only`,
        { name: rec.name, row: i },
      );
    }
    let rows = groups.get(rec);
    if (rows === undefined) groups.set(rec, (rows = []));
    rows.push(i);
  }
  return groups;
}

/** Adds each group's adapter term to its rows of h [n, dOut] (h already holds x·W + bias). */
export function addGroups(
  ctx: VariantContext,
  x: FloatArray,
  h: FloatArray,
  groups: Map<AdapterRecord, number[]>,
): void {
  const { dIn, dOut } = ctx;
  for (const [rec, rows] of groups) {
    const g = rows.length;
    const i0 = rows[0]!;
    if (rows[g - 1]! - i0 === g - 1) {
      // consecutive rows (rows are in increasing order: a sequence's prompt, a batch on one adapter): views of x and
      // h, no gather or scatter; the same values in the same order, so the same bits
      rec.variant.forward(
        ctx,
        rec,
        x.subarray(i0 * dIn, (i0 + g) * dIn),
        g,
        h.subarray(i0 * dOut, (i0 + g) * dOut),
        false,
      );
      continue;
    }
    const xg = alloc(x, g * dIn); // gathered rows of x: [g, dIn]
    const hg = alloc(h, g * dOut); // gathered rows of h: [g, dOut]
    for (let q = 0; q < g; q++) {
      const i = rows[q]!;
      xg.set(x.subarray(i * dIn, (i + 1) * dIn), q * dIn);
      hg.set(h.subarray(i * dOut, (i + 1) * dOut), q * dOut);
    }
    rec.variant.forward(ctx, rec, xg, g, hg, false);
    for (let q = 0; q < g; q++) {
      const i = rows[q]!;
      h.set(hg.subarray(q * dOut, (q + 1) * dOut), i * dOut);
    }
  }
}
