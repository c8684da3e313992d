import { test } from "node:test";
import assert from "node:assert/strict";
import { PullProgress, renderLayers, updateLayers } from "./pull-progress.js";

const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

test("ingests of pulls become layers; a vanished ingest is done; other ingests are ignored", () => {
  const layers = new Map();
  const fresh = updateLayers(layers, [
    { ref: `pull-${D1}`, offset: 500, size: 1000, digest: D1 },
    { ref: "import-xyz", offset: 5 },
  ]);
  assert.deepEqual(fresh.map((l) => l.digest), [D1]);
  assert.deepEqual(renderLayers([...layers.values()]), [`${"a".repeat(12)}: [==============>               ] 500B/1kB`]);
  assert.deepEqual(updateLayers(layers, [{ ref: `pull-${D2}`, offset: 7 }]).map((l) => l.digest), [D2]);
  assert.deepEqual(renderLayers([...layers.values()]), [`${"a".repeat(12)}: done 1kB`, `${"b".repeat(12)}: downloading 7B`]);
});

test("on a TTY the progress is redrawn in place and ends with every layer done", async () => {
  let text = "";
  const io = { out: () => {}, err: (t: string) => void (text += t), isTty: true };
  let n = 0;
  const p = new PullProgress(io, "busybox", async () => (n++ < 100 ? [{ ref: `pull-${D1}`, offset: 10, size: 20, digest: D1 }] : []), 5);
  p.start();
  await new Promise((r) => setTimeout(r, 60));
  p.stop(true);
  assert.match(text, /Pulling busybox/);
  assert.match(text, /aaaaaaaaaaaa: \[=+> +\] 10B\/20B/);
  assert.match(text, /\x1b\[\d+A/, "later frames move the cursor up over the previous one");
  assert.match(text, /Pulled busybox \(\d+s\)\n\x1b\[2Kaaaaaaaaaaaa: done 20B\n$/);
});

test("without a TTY: plain lines, one per blob; without the debug API: no invented bars", async () => {
  let text = "";
  const io = { out: () => {}, err: (t: string) => void (text += t), isTty: false };
  const p = new PullProgress(io, "busybox", async () => [{ ref: `pull-${D2}`, offset: 1, size: 2_000_000, digest: D2 }], 5);
  p.start();
  await new Promise((r) => setTimeout(r, 40));
  p.stop(true);
  assert.equal(text, `Pulling busybox\n${D2}: downloading 2MB\n`);

  let tty = "";
  const spin = new PullProgress({ out: () => {}, err: (t: string) => void (tty += t), isTty: true }, "busybox", undefined, 5);
  spin.start();
  await new Promise((r) => setTimeout(r, 30));
  spin.stop(true);
  assert.match(tty, /per-layer progress needs skiffd's debug socket/);
  assert.doesNotMatch(tty, /\[=/);
});
