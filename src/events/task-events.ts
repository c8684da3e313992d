/**
 * Typed view of the `/tasks/*` events a containerd 1.6 shim publishes. Consumers (exit monitor,
 * tasks service) switch on `kind` and never touch protobuf types.
 *
 * The same event may arrive more than once; see `EventExchange`.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { timestampToRfc3339 } from "../util/time.js";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors.js";
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
import { anyIs, typeNameOf, unpackAny } from "../proto/any.js";
import type { Envelope } from "./exchange.js";

export const TaskTopic = {
  Create: "/tasks/create",
  Start: "/tasks/start",
  Exit: "/tasks/exit",
  Delete: "/tasks/delete",
  OOM: "/tasks/oom",
  ExecAdded: "/tasks/exec-added",
  ExecStarted: "/tasks/exec-started",
  Paused: "/tasks/paused",
  Resumed: "/tasks/resumed",
  Checkpointed: "/tasks/checkpointed",
} as const;
export type TaskTopic = (typeof TaskTopic)[keyof typeof TaskTopic];

/** Prefix filter for all task events (`EventFilter.topics`). */
export const TASK_TOPIC_PREFIX = "/tasks/";

export interface MountInfo {
  type: string;
  source: string;
  target: string;
  options: string[];
}

interface Base {
  namespace: string;
  /** When the shim stamped the envelope. */
  timestamp: Date;
  containerId: string;
}

export type TaskEvent =
  | (Base & {
      topic: typeof TaskTopic.Create;
      kind: "create";
      bundle: string;
      rootfs: MountInfo[];
      io: { stdin: string; stdout: string; stderr: string; terminal: boolean } | undefined;
      checkpoint: string;
      pid: number;
    })
  | (Base & { topic: typeof TaskTopic.Start; kind: "start"; pid: number })
  | (Base & {
      topic: typeof TaskTopic.Exit;
      kind: "exit";
      /** Exec id; equals containerId for the init process. */
      id: string;
      pid: number;
      exitStatus: number;
      exitedAt: Date | undefined;
      /** The same instant as RFC 3339 with the shim's nanoseconds (a Date keeps only ms). */
      exitedAtRfc3339: string | undefined;
    })
  | (Base & {
      topic: typeof TaskTopic.Delete;
      kind: "delete";
      /** Exec id; empty for the init process. */
      id: string;
      pid: number;
      exitStatus: number;
      exitedAt: Date | undefined;
      /** The same instant as RFC 3339 with the shim's nanoseconds (a Date keeps only ms). */
      exitedAtRfc3339: string | undefined;
    })
  | (Base & { topic: typeof TaskTopic.OOM; kind: "oom" })
  | (Base & { topic: typeof TaskTopic.ExecAdded; kind: "exec-added"; execId: string })
  | (Base & { topic: typeof TaskTopic.ExecStarted; kind: "exec-started"; execId: string; pid: number })
  | (Base & { topic: typeof TaskTopic.Paused; kind: "paused" })
  | (Base & { topic: typeof TaskTopic.Resumed; kind: "resumed" })
  | (Base & { topic: typeof TaskTopic.Checkpointed; kind: "checkpointed"; checkpoint: string });

export type TaskEventKind = TaskEvent["kind"];

/**
 * Decodes a `/tasks/*` envelope. Returns undefined for any other topic (including unknown
 * `/tasks/...` topics from newer shims). Throws InvalidArgument when the payload's type does
 * not match the topic or its bytes are malformed.
 */
export function decodeTaskEvent(env: Envelope): TaskEvent | undefined {
  const base = (containerId: string): Base => ({ namespace: env.namespace, timestamp: env.timestamp, containerId });
  const topic = env.topic;
  switch (topic) {
    case TaskTopic.Create: {
      const e = unpack(env, TaskCreateSchema);
      return {
        ...base(e.containerId),
        topic,
        kind: "create",
        bundle: e.bundle,
        rootfs: e.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target, options: [...m.options] })),
        io: e.io && { stdin: e.io.stdin, stdout: e.io.stdout, stderr: e.io.stderr, terminal: e.io.terminal },
        checkpoint: e.checkpoint,
        pid: e.pid,
      };
    }
    case TaskTopic.Start: {
      const e = unpack(env, TaskStartSchema);
      return { ...base(e.containerId), topic, kind: "start", pid: e.pid };
    }
    case TaskTopic.Exit: {
      const e = unpack(env, TaskExitSchema);
      return {
        ...base(e.containerId),
        topic,
        kind: "exit",
        id: e.id,
        pid: e.pid,
        exitStatus: e.exitStatus,
        exitedAt: toDate(e.exitedAt),
        exitedAtRfc3339: toDate(e.exitedAt) && timestampToRfc3339(e.exitedAt!),
      };
    }
    case TaskTopic.Delete: {
      const e = unpack(env, TaskDeleteSchema);
      return {
        ...base(e.containerId),
        topic,
        kind: "delete",
        id: e.id,
        pid: e.pid,
        exitStatus: e.exitStatus,
        exitedAt: toDate(e.exitedAt),
        exitedAtRfc3339: toDate(e.exitedAt) && timestampToRfc3339(e.exitedAt!),
      };
    }
    case TaskTopic.OOM:
      return { ...base(unpack(env, TaskOOMSchema).containerId), topic, kind: "oom" };
    case TaskTopic.ExecAdded: {
      const e = unpack(env, TaskExecAddedSchema);
      return { ...base(e.containerId), topic, kind: "exec-added", execId: e.execId };
    }
    case TaskTopic.ExecStarted: {
      const e = unpack(env, TaskExecStartedSchema);
      return { ...base(e.containerId), topic, kind: "exec-started", execId: e.execId, pid: e.pid };
    }
    case TaskTopic.Paused:
      return { ...base(unpack(env, TaskPausedSchema).containerId), topic, kind: "paused" };
    case TaskTopic.Resumed:
      return { ...base(unpack(env, TaskResumedSchema).containerId), topic, kind: "resumed" };
    case TaskTopic.Checkpointed: {
      const e = unpack(env, TaskCheckpointedSchema);
      return { ...base(e.containerId), topic, kind: "checkpointed", checkpoint: e.checkpoint };
    }
    default:
      return undefined;
  }
}

function unpack<Desc extends DescMessage>(env: Envelope, schema: Desc): MessageShape<Desc> {
  if (!anyIs(env.event, schema)) {
    throw invalidArgument(
      `event ${env.topic}: payload is ${typeNameOf(env.event.typeUrl) || "empty"}, want ${schema.typeName}`,
    );
  }
  // anyIs checked the type, so unpackAny returns a message or throws on malformed bytes.
  return unpackAny(env.event, schema)!;
}

/** Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which 1.6 sends for "not set". */
const GO_ZERO_TIME_SECONDS = -62135596800n;

/** An absent Timestamp or Go's zero time means "unknown". */
function toDate(ts: Timestamp | undefined): Date | undefined {
  if (!ts || (ts.seconds <= GO_ZERO_TIME_SECONDS && ts.nanos === 0)) return undefined;
  return timestampDate(ts);
}
