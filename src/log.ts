/** The daemon's structured logger. Components take a child logger with their name and ids. */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

export function createLogger(level = process.env.SKIFF_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything (unit tests, library use). */
export const silentLogger: Logger = pino({ level: "silent" });
