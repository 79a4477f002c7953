// The PEFT golden set's torch.save files (shared/fixtures/peft-golden, located by test/helpers/shared.ts). Tests that
// need it skip when it is not there.

export { PEFT_GOLDEN } from "../helpers/shared.js";

/** The variants with an adapter-bin/ folder, and the torch.save format each was written in. */
export const BIN_VARIANTS: readonly (readonly [string, "zip" | "legacy"])[] = [
  ["peft-llama-basic", "zip"],
  ["peft-llama-bf16", "zip"],
  ["peft-llama-dora", "zip"],
  ["peft-gpt2-conv1d", "legacy"],
];
