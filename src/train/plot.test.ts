import { describe, expect, it } from "vitest";
import { lossCurveSvg } from "./plot.js";

describe("lossCurveSvg", () => {
  it("draws one polyline per series with a legend, on decade grid lines", () => {
    const svg = lossCurveSvg(
      [
        { label: "a", values: [1, 0.1, 0.01] },
        { label: "b <&>", values: [0.5, 0.05] },
      ],
      { title: "T", width: 400, height: 300 },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"')).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain("b &#60;&#38;&#62;");
    expect(svg).not.toContain("b <&>");
    for (const d of ["1e-2", "1e-1", "1e0"]) expect(svg).toContain(`>${d}</text>`);
    // the first series starts at the left edge (epoch 1) on the 1e0 line and ends at the 1e-2 line
    expect(svg).toMatch(/points="64,40 [\d.]+,[\d.]+ 230,252"/);
  });

  it("skips non-positive and non-finite values and survives empty input", () => {
    const svg = lossCurveSvg([{ label: "z", values: [0, Number.NaN, 1] }]);
    expect(svg.match(/<polyline /g)).toHaveLength(1);
    expect(lossCurveSvg([])).toContain("</svg>");
    expect(lossCurveSvg([{ label: "none", values: [] }])).not.toContain("<polyline");
  });
});
