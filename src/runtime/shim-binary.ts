/**
 * The runtime v2 binary protocol of a shim: `start` (launch or find the shim for a group and
 * print its address) and `delete` (clean up a task when its shim can no longer be reached).
 * Both run with the working directory set to a bundle.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { DeleteResponseSchema } from "../gen/containerd/task/v2/shim_pb.js";
import { run } from "../util/exec.js";
import { internal, unavailable } from "../errors.js";
import { socketPathOf } from "../ttrpc/index.js";
import { linkedSignal } from "../util/signal.js";
import { isZeroTimestamp, timestampToRfc3339 } from "../util/time.js";

export interface ShimBinaryOptions {
  /** Shim binary (absolute path or a name on PATH). */
  binary: string;
  namespace: string;
  /** The daemon's main socket; the shim hashes it (with namespace and group) into its own socket path. */
  daemonAddress: string;
  /** Where the shim publishes events (`TTRPC_ADDRESS`). */
  ttrpcAddress: string;
  /** Passed as -publish-binary; unused by 1.6 shims that have TTRPC_ADDRESS, but required by the flag set. */
  publishBinary?: string;
}

function baseArgs(o: ShimBinaryOptions, id: string): string[] {
  return ["-namespace", o.namespace, "-address", o.daemonAddress, "-publish-binary", o.publishBinary ?? "/bin/false", "-id", id];
}

/**
 * Runs `<shim> ... start` in `cwd` (the shim's home bundle). `options` is the encoded
 * google.protobuf.Any of the runtime options, written to the shim's stdin.
 * Returns the shim's ttrpc socket path. The caller must already hold a reader on the `log`
 * FIFO in `cwd`, or the new shim blocks opening it.
 */
export async function startShimProcess(
  o: ShimBinaryOptions,
  args: { id: string; cwd: string; options?: Uint8Array; timeoutMs: number; signal?: AbortSignal },
): Promise<string> {
  const bound = linkedSignal([args.signal], args.timeoutMs);
  const env = { ...process.env, TTRPC_ADDRESS: o.ttrpcAddress };
  const res = await run(o.binary, [...baseArgs(o, args.id), "start"], {
    cwd: args.cwd,
    env,
    input: args.options ?? new Uint8Array(),
    signal: bound.signal,
  }).finally(() => bound.dispose());
  if (res.code !== 0) {
    throw unavailable(
      `start shim for "${args.id}": ${o.binary} exited ${res.code ?? res.signal}: ${res.stderr.toString().trim()}`,
    );
  }
  const address = res.stdout.toString().trim();
  if (!address) throw internal(`start shim for "${args.id}": the shim printed no address`);
  return socketPathOf(address);
}

export interface CleanupResult {
  pid: number;
  exitStatus: number;
  /** RFC 3339 with nanoseconds; undefined when the shim reported none. */
  exitedAt: string | undefined;
}

/**
 * Runs `<shim> ... -bundle <bundle> delete` for a task whose shim is gone: the shim binary
 * force-deletes the runc container and unmounts its rootfs, then prints a DeleteResponse.
 */
export async function cleanupShimTask(
  o: ShimBinaryOptions,
  args: { id: string; bundle: string; timeoutMs: number; signal?: AbortSignal },
): Promise<CleanupResult> {
  const bound = linkedSignal([args.signal], args.timeoutMs);
  const res = await run(o.binary, [...baseArgs(o, args.id), "-bundle", args.bundle, "delete"], {
    cwd: args.bundle,
    env: { ...process.env, TTRPC_ADDRESS: o.ttrpcAddress },
    signal: bound.signal,
  }).finally(() => bound.dispose());
  if (res.code !== 0) {
    throw internal(`cleanup of "${args.id}": ${o.binary} delete exited ${res.code ?? res.signal}: ${res.stderr.toString().trim()}`);
  }
  const msg = fromBinary(DeleteResponseSchema, res.stdout);
  return { pid: msg.pid, exitStatus: msg.exitStatus, exitedAt: isZeroTimestamp(msg.exitedAt) ? undefined : timestampToRfc3339(msg.exitedAt!) };
}
