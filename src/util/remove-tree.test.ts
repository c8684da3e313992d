import { test } from "node:test";
import assert from "node:assert/strict";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { runChecked } from "./exec.js";
import { removeTree } from "./remove-tree.js";

test("removeTree removes a tree deeper than PATH_MAX, where fs.rm fails with ENAMETOOLONG", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-rmtree-"));
  t.after(() => runChecked("rm", ["-rf", dir]));
  const deep = path.join(dir, "deep");
  // 2,100 levels of "x/": a path of over 4,200 bytes, made by walking down relative to each level.
  await runChecked("sh", ["-c", `mkdir "$1" && cd "$1" && i=0; while [ $i -lt 2100 ]; do mkdir x && cd x; i=$((i+1)); done; echo bottom > f`, "sh", deep]);
  await assert.rejects(rm(deep, { recursive: true, force: true }), { code: "ENAMETOOLONG" }, "the case fs.rm cannot handle");
  await removeTree(deep);
  await assert.rejects(access(deep), { code: "ENOENT" });
  await writeFile(path.join(dir, "plain"), "x");
  await removeTree(path.join(dir, "plain"));
  await removeTree(path.join(dir, "missing"));
  await assert.rejects(access(path.join(dir, "plain")), { code: "ENOENT" });
});
