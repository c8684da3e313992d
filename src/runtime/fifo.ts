/**
 * FIFOs for shim logs and task stdio. Node has no mkfifo(3): we spawn mkfifo(1).
 *
 * Reading a FIFO through a net.Socket keeps all I/O on libuv's event loop (no thread-pool
 * reads that block on an empty pipe).
 */
import { constants, open } from "node:fs";
import * as net from "node:net";
import { runChecked } from "../util/exec.js";

export async function mkfifo(path: string, mode = 0o600): Promise<void> {
  await mkfifos([path], mode);
}

/** Several FIFOs with one mkfifo(1) process (a spawn costs milliseconds on hot paths). */
export async function mkfifos(paths: string[], mode = 0o600): Promise<void> {
  if (paths.length === 0) return;
  await runChecked("mkfifo", ["-m", mode.toString(8), "--", ...paths]);
}

/**
 * Opens a FIFO for reading without waiting for a writer.
 * `keepOpen: true` opens it O_RDWR, so the reader never sees EOF when writers come and go
 * (used for the shim log, which lives as long as the shim). Otherwise it is O_RDONLY|O_NONBLOCK
 * and the stream ends when the last writer closes; attach it only after a writer has opened.
 * The caller owns the returned socket and must destroy() it.
 */
export async function openFifoReader(path: string, opts: { keepOpen?: boolean } = {}): Promise<net.Socket> {
  const flags = opts.keepOpen ? constants.O_RDWR | constants.O_NONBLOCK : constants.O_RDONLY | constants.O_NONBLOCK;
  // The callback form gives a bare fd (a FileHandle would close it on garbage collection).
  const fd = await new Promise<number>((resolve, reject) =>
    open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
  return new net.Socket({ fd, readable: true, writable: false });
}
