/** Client of the debug API (used by the `skiff task` CLI and by tests that run skiffd as a process). */
import { TtrpcClient } from "../ttrpc/index.js";
import { DEBUG_SERVICE } from "./debug-service.js";
import { unavailable } from "../errors.js";

export class DebugClient {
  private constructor(private readonly ttrpc: TtrpcClient) {}

  static async connect(socket: string, opts: { timeoutMs?: number } = {}): Promise<DebugClient> {
    try {
      return new DebugClient(await TtrpcClient.connect(socket, { timeoutMs: opts.timeoutMs ?? 5000 }));
    } catch (err) {
      throw unavailable(`cannot reach skiffd at ${socket}: is it running? (start it with "make run")`, err);
    }
  }

  async call<T = Record<string, unknown>>(
    method: string,
    req: Record<string, unknown> = {},
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const out = await this.ttrpc.call(DEBUG_SERVICE, method, Buffer.from(JSON.stringify(req)), opts);
    return JSON.parse(Buffer.from(out).toString("utf8")) as T;
  }

  close(): void {
    this.ttrpc.destroy();
  }
}
