// Types of scripts/build-wasm.mjs for the tests that import it.
export declare const SHARED_MAX_PAGES: number;
export declare function compileWasm(build: { relaxed: boolean; shared: boolean }): Buffer;
