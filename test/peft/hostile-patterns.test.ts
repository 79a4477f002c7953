// Regular expressions from adapter_config.json cannot hang the process (issue: the rank_pattern key "(.*)*z" took
// minutes in loadPeftAdapter, inspect and merge): they run without backtracking (safe-regex.ts), and keys outside
// the supported syntax are refused as invalid_config with their path.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inspectCommand } from "../../cli/inspect.js";
import { ConfigError } from "../../src/errors.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parsePeftConfig, targetsModule } from "../../src/io/peft-config.js";
import { adapterBytes } from "./synthetic.js";

// a module path long enough that backtracking over (.*)* would take longer than the test timeout
const path = `model.${"layers.0.".repeat(12)}self_attn.q_proj`;
const weights = adapterBytes([{ path, dIn: 4, dOut: 4, r: 2 }]);

describe("hostile rank_pattern / alpha_pattern / target_modules", () => {
  it('"(.*)*z" as a rank_pattern and alpha_pattern key: loads at once, the key does not apply', () => {
    const a = loadPeftAdapter({
      config: { peft_type: "LORA", r: 2, rank_pattern: { "(.*)*z": 3 }, alpha_pattern: { "(a|a)*(.*)*z": 9 } },
      weights,
    });
    expect(a.modules[0]).toMatchObject({ r: 2, alpha: 8 });
  });

  it('"(.*)*q_proj" does apply (the same match as PEFT\'s re.match)', () => {
    const a = loadPeftAdapter({
      config: { peft_type: "LORA", r: 2, lora_alpha: 4, alpha_pattern: { "(.*)*q_proj": 6 } },
      weights,
    });
    expect(a.modules[0]!.alpha).toBe(6);
    expect(targetsModule("(.*)*(.*)*z", `${"a".repeat(5000)}`)).toBe(false);
  });

  it("lorakit inspect on such an adapter returns", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "lorakit-hostile-")), "adapter");
    mkdirSync(dir);
    writeFileSync(
      join(dir, "adapter_config.json"),
      JSON.stringify({ peft_type: "LORA", r: 2, rank_pattern: { "(.*)*z": 3 }, target_modules: "(.*)*z" }),
    );
    writeFileSync(join(dir, "adapter_model.safetensors"), weights);
    let out = "";
    const io = { stdout: (s: string) => void (out += s), stderr: () => {}, isTTY: false };
    expect(await inspectCommand.run([dir], io)).toBe(0);
    expect(out).toMatch(/1 modules/);
  });

  it("invalid_config: keys using syntax lorakit cannot match without backtracking, each with its path", () => {
    let err: unknown;
    try {
      parsePeftConfig({ peft_type: "LORA", rank_pattern: { "(a)\\1": 2 }, target_modules: "(?=q)q_proj" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe("invalid_config");
    expect(e.message).toMatch(
      /rank_pattern\.\(a\)\\1 is not a regular expression lorakit can match: .*the escape \\1 \(not supported\)/,
    );
    expect(e.message).toMatch(/target_modules is not a regular expression lorakit can match: .*lookaround/);
  });
});

describe("patterns handed straight to the public matchers", () => {
  it("targetsModule / patternKeyFor refuse an unsupported pattern with invalid_config, not a foreign error", () => {
    let err: unknown;
    try {
      targetsModule("(?<=x)q_proj", "model.q_proj");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("invalid_config");
    expect((err as ConfigError).message).toMatch(
      /pattern: "\(\?<=x\)q_proj" is not a pattern lorakit can match \(a lookaround/,
    );
  });
});
