/** A registry for the CLI's pull test: small, slow on purpose, and wanting basic auth. */
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import * as http from "node:http";
import { gzipSync } from "node:zlib";
import { runChecked } from "../../src/util/exec.js";

/**
 * A minimal registry (OCI distribution: manifests and blobs by GET/HEAD) on 127.0.0.1 that wants
 * basic auth and sends blob bodies at ~300 kB/s, so a pull lasts long enough to show progress.
 */
export async function startSlowRegistry(t: { after: (fn: () => Promise<void>) => void }, dir: string, creds: string) {
  const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
  const root = path.join(dir, "layer");
  await mkdir(path.join(root, "data"), { recursive: true });
  await writeFile(path.join(root, "data", "random"), randomBytes(900 * 1024));
  const tar = (await runChecked("tar", ["--owner=0", "--group=0", "-C", root, "-cf", "-", "."])).stdout;
  const layer = gzipSync(tar, { level: 1 });
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["/bin/sh"] }, rootfs: { type: "layers", diff_ids: [sha(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(layer), size: layer.length }],
    }),
  );
  const blobs = new Map([
    [sha(config), config],
    [sha(layer), layer],
  ]);
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from(creds).toString("base64")}`) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="test"', "Content-Type": "application/json" });
      return res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    const url = req.url ?? "";
    if (url === "/v2/" || url === "/v2") return res.writeHead(200).end("{}");
    if (/^\/v2\/slow\/manifests\/(1|sha256:[0-9a-f]{64})$/.test(url)) {
      res.writeHead(200, { "Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": sha(manifest), "Content-Length": manifest.length });
      return res.end(req.method === "HEAD" ? undefined : manifest);
    }
    const blob = /^\/v2\/slow\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url);
    const bytes = blob ? blobs.get(blob[1]!) : undefined;
    if (!bytes) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": bytes.length, "Docker-Content-Digest": blob![1] });
    if (req.method === "HEAD") return res.end();
    void (async () => {
      for (let i = 0; i < bytes.length && !res.destroyed; i += 32 * 1024) {
        res.write(bytes.subarray(i, i + 32 * 1024));
        await new Promise((r) => setTimeout(r, 100));
      }
      res.end();
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, layerDigest: sha(layer) };
}

