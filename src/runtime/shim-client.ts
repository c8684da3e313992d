/**
 * Typed client for one shim's `containerd.task.v2.Task` ttrpc service.
 *
 * Owns nothing: the TtrpcClient belongs to the ShimManager's handle. Every call takes a
 * signal and a timeout; a timed-out call may still complete in the shim (ttrpc has no cancel
 * frame), so callers treat DeadlineExceeded as "outcome unknown".
 */
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { Any } from "@bufbuild/protobuf/wkt";
import * as shim from "../gen/containerd/task/v2/shim_pb.js";
import { unaryCall, type TtrpcClient } from "../ttrpc/index.js";

export const TASK_SERVICE = "containerd.task.v2.Task";

export interface ShimCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export class ShimTaskClient {
  constructor(readonly ttrpc: TtrpcClient) {}

  private call<I extends DescMessage, O extends DescMessage>(
    method: string,
    inSchema: I,
    input: MessageInitShape<I>,
    outSchema: O,
    opts: ShimCallOptions,
  ): Promise<MessageShape<O>> {
    return unaryCall(this.ttrpc, TASK_SERVICE, method, inSchema, input, outSchema, opts) as Promise<MessageShape<O>>;
  }

  create(req: MessageInitShape<typeof shim.CreateTaskRequestSchema>, o: ShimCallOptions = {}) {
    return this.call("Create", shim.CreateTaskRequestSchema, req, shim.CreateTaskResponseSchema, o);
  }
  start(id: string, execId = "", o: ShimCallOptions = {}) {
    return this.call("Start", shim.StartRequestSchema, { id, execId }, shim.StartResponseSchema, o);
  }
  delete(id: string, execId = "", o: ShimCallOptions = {}) {
    return this.call("Delete", shim.DeleteRequestSchema, { id, execId }, shim.DeleteResponseSchema, o);
  }
  state(id: string, execId = "", o: ShimCallOptions = {}) {
    return this.call("State", shim.StateRequestSchema, { id, execId }, shim.StateResponseSchema, o);
  }
  wait(id: string, execId = "", o: ShimCallOptions = {}) {
    return this.call("Wait", shim.WaitRequestSchema, { id, execId }, shim.WaitResponseSchema, o);
  }
  kill(id: string, signal: number, opts: { execId?: string; all?: boolean } = {}, o: ShimCallOptions = {}) {
    return this.call(
      "Kill",
      shim.KillRequestSchema,
      { id, execId: opts.execId ?? "", signal, all: opts.all ?? false },
      EmptySchema,
      o,
    );
  }
  exec(req: MessageInitShape<typeof shim.ExecProcessRequestSchema>, o: ShimCallOptions = {}) {
    return this.call("Exec", shim.ExecProcessRequestSchema, req, EmptySchema, o);
  }
  pids(id: string, o: ShimCallOptions = {}) {
    return this.call("Pids", shim.PidsRequestSchema, { id }, shim.PidsResponseSchema, o);
  }
  stats(id: string, o: ShimCallOptions = {}) {
    return this.call("Stats", shim.StatsRequestSchema, { id }, shim.StatsResponseSchema, o);
  }
  update(id: string, resources: Any, annotations: Record<string, string> = {}, o: ShimCallOptions = {}) {
    return this.call("Update", shim.UpdateTaskRequestSchema, { id, resources, annotations }, EmptySchema, o);
  }
  closeIO(id: string, execId = "", o: ShimCallOptions = {}) {
    return this.call("CloseIO", shim.CloseIORequestSchema, { id, execId, stdin: true }, EmptySchema, o);
  }
  resizePty(id: string, execId: string, width: number, height: number, o: ShimCallOptions = {}) {
    return this.call("ResizePty", shim.ResizePtyRequestSchema, { id, execId, width, height }, EmptySchema, o);
  }
  pause(id: string, o: ShimCallOptions = {}) {
    return this.call("Pause", shim.PauseRequestSchema, { id }, EmptySchema, o);
  }
  resume(id: string, o: ShimCallOptions = {}) {
    return this.call("Resume", shim.ResumeRequestSchema, { id }, EmptySchema, o);
  }
  connect(id: string, o: ShimCallOptions = {}) {
    return this.call("Connect", shim.ConnectRequestSchema, { id }, shim.ConnectResponseSchema, o);
  }
  shutdown(id: string, now = false, o: ShimCallOptions = {}) {
    return this.call("Shutdown", shim.ShutdownRequestSchema, { id, now }, EmptySchema, o);
  }
}
