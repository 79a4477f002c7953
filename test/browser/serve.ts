// A tiny static file server for the browser tests: serves folders under URL prefixes on 127.0.0.1 and a random
// port. With `isolated`, every response carries the COOP/COEP headers that make the page cross-origin isolated.

import { readFile, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".wasm": "application/wasm",
  ".map": "application/json",
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `mounts` (URL prefix → folder, e.g. {"/": dist/playground, "/bundle/": dist/browser}). */
export async function serveStatic(mounts: Record<string, string>, { isolated = false } = {}): Promise<StaticServer> {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server: Server = createServer(async (req, res) => {
    const headers: Record<string, string> = { "Cache-Control": "no-store" };
    if (isolated) {
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = "require-corp";
    }
    try {
      const urlPath = decodeURIComponent(new URL(req.url ?? "/", "http://127.0.0.1").pathname);
      const prefix = prefixes.find((p) => urlPath.startsWith(p));
      if (!prefix) throw new Error("no mount");
      const root = path.resolve(mounts[prefix]!);
      let file = path.resolve(root, `.${path.sep}${urlPath.slice(prefix.length)}`);
      if (file !== root && !file.startsWith(root + path.sep)) throw new Error("outside the root");
      if ((await stat(file)).isDirectory()) file = path.join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { ...headers, "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" });
      res.end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
