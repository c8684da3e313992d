import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isInvalidArgument } from "../errors.js";
import {
  TaskCheckpointedSchema,
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExecAddedSchema,
  TaskExecStartedSchema,
  TaskExitSchema,
  TaskOOMSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from "../gen/containerd/events/task_pb.js";
import { packAny } from "../proto/any.js";
import type { Envelope } from "./exchange.js";
import { decodeTaskEvent, TaskTopic } from "./task-events.js";

const stamp = new Date("2024-05-01T10:00:00.123Z");

function envelope<Desc extends DescMessage>(topic: string, schema: Desc, init: MessageInitShape<Desc>): Envelope {
  return { timestamp: stamp, namespace: "skiff", topic, event: packAny(schema, create(schema, init)) };
}

describe("decodeTaskEvent", () => {
  test("exit", () => {
    const exitedAt = new Date("2024-05-01T09:59:59.5Z");
    const ev = decodeTaskEvent(
      envelope(TaskTopic.Exit, TaskExitSchema, {
        containerId: "c1",
        id: "exec-1",
        pid: 77,
        exitStatus: 137,
        exitedAt: timestampFromDate(exitedAt),
      }),
    );
    assert.deepEqual(ev, {
      namespace: "skiff",
      timestamp: stamp,
      containerId: "c1",
      topic: "/tasks/exit",
      kind: "exit",
      id: "exec-1",
      pid: 77,
      exitStatus: 137,
      exitedAt,
      exitedAtRfc3339: "2024-05-01T09:59:59.500000000Z",
    });
  });

  test("exit with Go's zero time or no time has exitedAt undefined", () => {
    const zero = decodeTaskEvent(
      envelope(TaskTopic.Exit, TaskExitSchema, { containerId: "c", exitedAt: { seconds: -62135596800n, nanos: 0 } }),
    );
    assert.equal(zero?.kind === "exit" && zero.exitedAt, undefined);
    const none = decodeTaskEvent(envelope(TaskTopic.Exit, TaskExitSchema, { containerId: "c" }));
    assert.equal(none?.kind === "exit" && none.exitedAt, undefined);
  });

  test("accepts a type.googleapis.com/ prefixed payload", () => {
    const env: Envelope = {
      timestamp: stamp,
      namespace: "skiff",
      topic: TaskTopic.OOM,
      event: anyPack(TaskOOMSchema, create(TaskOOMSchema, { containerId: "c9" })),
    };
    assert.deepEqual(decodeTaskEvent(env), {
      namespace: "skiff",
      timestamp: stamp,
      containerId: "c9",
      topic: "/tasks/oom",
      kind: "oom",
    });
  });

  test("every task topic decodes to its kind", () => {
    const cases: [Envelope, string, Record<string, unknown>][] = [
      [
        envelope(TaskTopic.Create, TaskCreateSchema, {
          containerId: "c",
          bundle: "/run/b",
          pid: 5,
          rootfs: [{ type: "overlay", source: "overlay", options: ["lowerdir=/l"] }],
          io: { stdout: "/f/out", terminal: true },
        }),
        "create",
        {
          bundle: "/run/b",
          pid: 5,
          checkpoint: "",
          rootfs: [{ type: "overlay", source: "overlay", target: "", options: ["lowerdir=/l"] }],
          io: { stdin: "", stdout: "/f/out", stderr: "", terminal: true },
        },
      ],
      [envelope(TaskTopic.Start, TaskStartSchema, { containerId: "c", pid: 9 }), "start", { pid: 9 }],
      [
        envelope(TaskTopic.Delete, TaskDeleteSchema, { containerId: "c", pid: 9, exitStatus: 1 }),
        "delete",
        { id: "", pid: 9, exitStatus: 1, exitedAt: undefined, exitedAtRfc3339: undefined },
      ],
      [envelope(TaskTopic.ExecAdded, TaskExecAddedSchema, { containerId: "c", execId: "e" }), "exec-added", { execId: "e" }],
      [
        envelope(TaskTopic.ExecStarted, TaskExecStartedSchema, { containerId: "c", execId: "e", pid: 3 }),
        "exec-started",
        { execId: "e", pid: 3 },
      ],
      [envelope(TaskTopic.Paused, TaskPausedSchema, { containerId: "c" }), "paused", {}],
      [envelope(TaskTopic.Resumed, TaskResumedSchema, { containerId: "c" }), "resumed", {}],
      [
        envelope(TaskTopic.Checkpointed, TaskCheckpointedSchema, { containerId: "c", checkpoint: "sha256:x" }),
        "checkpointed",
        { checkpoint: "sha256:x" },
      ],
    ];
    for (const [env, kind, fields] of cases) {
      const ev = decodeTaskEvent(env);
      assert.deepEqual(ev, { namespace: "skiff", timestamp: stamp, containerId: "c", topic: env.topic, kind, ...fields });
    }
  });

  test("other topics give undefined", () => {
    assert.equal(decodeTaskEvent(envelope("/containers/create", TaskOOMSchema, {})), undefined);
    assert.equal(decodeTaskEvent(envelope("/tasks/something-new", TaskOOMSchema, {})), undefined);
  });

  test("payload type not matching the topic throws InvalidArgument", () => {
    assert.throws(() => decodeTaskEvent(envelope(TaskTopic.Exit, TaskOOMSchema, { containerId: "c" })), isInvalidArgument);
  });
});
