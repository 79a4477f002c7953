import { describe, expect, it } from "vitest";
import { parseSafetensors, serializeSafetensors } from "../../src/index.js";

describe("safetensors round trip", () => {
  it("writes and reads F32, F16, BF16 and F64", () => {
    const bytes = serializeSafetensors(
      {
        a: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
        b: { dtype: "F16", shape: [3], data: new Float32Array([1, 2.5, -0.1]) },
        c: { dtype: "BF16", shape: [1], data: new Float32Array([3]) },
        d: { dtype: "F64", shape: [], data: new Float64Array([Math.PI]) },
      },
      { format: "pt" },
    );
    const p = parseSafetensors(bytes);
    expect(p.metadata).toEqual({ format: "pt" });
    expect([...p.toFloat32("a")]).toEqual([1, 2, 3, 4]);
    expect([...p.toFloat32("b")]).toEqual([1, 2.5, Math.fround(-0.0999755859375)]);
    expect([...p.toFloat32("c")]).toEqual([3]);
    expect([...p.toFloat64("d")]).toEqual([Math.PI]);
    expect(p.names()).toEqual(["d", "a", "b", "c"]);
  });
});
