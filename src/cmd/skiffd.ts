#!/usr/bin/env node
/** skiffd — the skiff daemon. `skiffd [--config FILE]`; SIGTERM/SIGINT shut it down gracefully. */
import "./threadpool.js"; // first: sizes libuv's thread pool before it starts
import { Command } from "commander";
import { loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { Daemon } from "../daemon/daemon.js";

const DEFAULT_CONFIG = "/etc/skiff/config.toml";

const program = new Command()
  .name("skiffd")
  .description("skiff container runtime daemon")
  .option("-c, --config <file>", "TOML configuration file", DEFAULT_CONFIG)
  .option("--log-level <level>", "log level (trace, debug, info, warn, error)")
  .parse();

const opts = program.opts<{ config: string; logLevel?: string }>();
const cfg = await loadConfig(opts.config, { optional: opts.config === DEFAULT_CONFIG });
const log = createLogger(opts.logLevel ?? cfg.logLevel);
const daemon = new Daemon(cfg, log);

let stopping = false;
const stop = (sig: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal: sig }, "shutting down");
  daemon.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

try {
  await daemon.start();
} catch (err) {
  log.fatal({ err: (err as Error).message }, "skiffd failed to start");
  process.exit(1);
}
