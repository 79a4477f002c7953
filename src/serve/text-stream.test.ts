import { describe, expect, it } from "vitest";
import { TextStream } from "./text-stream.js";

// A byte-level toy tokenizer: each id is one UTF-8 byte; decode turns bad/incomplete sequences into U+FFFD.
const decodeBytes = (ids: readonly number[]) => new TextDecoder().decode(new Uint8Array(ids));
const bytes = (s: string) => [...new TextEncoder().encode(s)];

function run(text: string, stop: string[]): { deltas: string[]; stream: TextStream; final: string } {
  const stream = new TextStream(decodeBytes, stop);
  const deltas: string[] = [];
  for (const id of bytes(text)) {
    deltas.push(stream.push(id));
    if (stream.isStopped) break;
  }
  const final = stream.finish();
  return { deltas, stream, final };
}

describe("TextStream", () => {
  it("releases text token by token and holds a character split over byte tokens until it is whole", () => {
    const { deltas, stream } = run("aé€b", []);
    // é is 2 bytes, € is 3: their first bytes release nothing
    expect(deltas).toEqual(["a", "", "é", "", "", "€", "b"]);
    expect(stream.text).toBe("aé€b");
  });

  it("ends before a stop string spread over several tokens, holding back what could start it", () => {
    const { deltas, stream } = run("hello END world", ["END"]);
    expect(stream.isStopped).toBe(true);
    expect(stream.text).toBe("hello ");
    expect(deltas.join("")).toBe("hello ");
    // "E" and "EN" were held back, never released
    expect(deltas.slice(-3)).toEqual(["", "", ""]);
  });

  it("releases held-back text that turned out not to be a stop string, and flushes it at the end", () => {
    const a = run("an ENd", ["END"]);
    expect(a.stream.isStopped).toBe(false);
    expect(a.deltas.join("") + a.final).toBe("an ENd");
    const b = run("xx EN", ["END"]);
    expect(b.deltas.join("")).toBe("xx ");
    expect(b.final).toBe("EN");
    expect(b.stream.text).toBe("xx EN");
  });

  it("stops at the earliest of several stop strings, including one at the very start", () => {
    expect(run("abcdef", ["de", "bc"]).stream.text).toBe("a");
    const first = run("stop", ["st"]);
    expect(first.stream.text).toBe("");
    expect(first.stream.isStopped).toBe(true);
    expect(first.stream.push(97)).toBe("");
  });

  it("handles a stop string after a multi-byte character and one that overlaps its own prefix", () => {
    expect(run("é!!x", ["!x"]).stream.text).toBe("é!");
    expect(run("aaab", ["aab"]).stream.text).toBe("a");
  });

  it("flushes an unfinished character at the end as U+FFFD", () => {
    const s = new TextStream(decodeBytes, []);
    expect([s.push(97), s.push(0xe2), s.push(0x82)]).toEqual(["a", "", ""]);
    expect(s.finish()).toBe("\uFFFD");
    expect(s.text).toBe("a\uFFFD");
  });

  it("decodes the first tokens after the prompt's last ids, keeping a word-start space", () => {
    // SentencePiece-like: "_" marks a word start, shown as a space except at the start of a decode
    const pieces = ["_The", "_cat", "_sat", "s"];
    const decode = (ids: readonly number[]) =>
      ids
        .map((i) => pieces[i]!.replace("_", " "))
        .join("")
        .replace(/^ /, "");
    const alone = new TextStream(decode, []);
    expect(alone.push(2)).toBe("sat");
    const after = new TextStream(decode, [], [0, 1]);
    expect([after.push(2), after.push(3)]).toEqual([" sat", "s"]);
    expect(after.text).toBe(" sats");
  });

  it("without a decoder (no tokenizer) releases nothing", () => {
    const s = new TextStream(null, []);
    expect(s.push(65)).toBe("");
    expect(s.finish()).toBe("");
  });
});
