import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { silentLogger } from "../log.js";
import { runCommand, wantedStreams, type CommandRequest } from "./command-run.js";
import type { Status } from "./status.js";
import type { StreamingBackend } from "./types.js";

class SlowSink extends Writable {
  text = "";
  constructor(private readonly events: string[], private readonly name: string) {
    super();
  }
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) {
    setTimeout(() => {
      this.text += c.toString();
      this.events.push(`${this.name}:${c.toString()}`);
      cb();
    }, 20);
  }
}

const req: CommandRequest = { kind: "exec", containerId: "c", cmd: ["x"], stdin: false, stdout: true, stderr: true, tty: false };

test("the status is written only after the output has been flushed", async () => {
  const events: string[] = [];
  const backend: StreamingBackend = {
    exec: async (_c, _cmd, io) => {
      io.stdout!.write("late");
      return { exitCode: 3 };
    },
    attach: async () => ({}),
    portForward: async () => undefined,
  };
  const out = new SlowSink(events, "stdout");
  let status: Status | undefined;
  await runCommand(backend, req, { stdout: out, writeStatus: async (s) => void events.push(`status:${(status = s).status}`) }, new AbortController().signal, silentLogger);
  assert.deepEqual(events, ["stdout:late", "status:Failure"]);
  assert.equal(status?.details?.causes[0]?.message, "3");
});

test("no status is written once the signal has aborted", async () => {
  const ac = new AbortController();
  const backend: StreamingBackend = {
    exec: async () => {
      ac.abort();
      return { exitCode: 0 };
    },
    attach: async () => ({}),
    portForward: async () => undefined,
  };
  let wrote = false;
  await runCommand(backend, req, { writeStatus: async () => void (wrote = true) }, ac.signal, silentLogger);
  assert.equal(wrote, false);
});

test("with a tty stderr is never requested", () => {
  assert.equal(wantedStreams({ ...req, tty: true }).stderr, false);
  assert.equal(wantedStreams(req).stderr, true);
});
