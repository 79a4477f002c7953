// Types of scripts/build-if-stale.mjs for the tests that import it.
export declare const STAMP: string;
export declare const OUTPUTS: string[];
export declare const SOURCES: string[];
export declare function staleReason(root?: string): string | null;
export declare function writeStamp(root?: string): void;
