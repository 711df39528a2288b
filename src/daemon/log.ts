/**
 * Small leveled logger with size-based rotation and secret redaction.
 *
 * Every line is `2026-11-25T00:00:00.000Z LEVEL [component] message`. Anything that
 * looks like a bearer/access/refresh token or a CURVE secret key is replaced by
 * `[redacted]` before it is written, so tokens never reach a log file.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const log = createLogger({ file: "/tmp/endpoint.log", level: "info" });
 * log.info("interchange", "started with %d workers", 4);
 * ```
 * @module
 */
import { format } from "node:util";

/** Log levels, in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const _ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger: `log.info("component", "fmt %s", arg)`. */
export interface Logger {
  level: LogLevel;
  debug(component: string, msg: string, ...args: unknown[]): void;
  info(component: string, msg: string, ...args: unknown[]): void;
  warn(component: string, msg: string, ...args: unknown[]): void;
  error(component: string, msg: string, ...args: unknown[]): void;
  /** Flush and close the file, if any. */
  close(): void;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Log file; omitted means stderr. */
  file?: string;
  level?: LogLevel;
  /** Rotate when the file exceeds this many bytes (default 10 MiB). */
  maxBytes?: number;
  /** How many rotated files to keep (`endpoint.log.1` …), default 3. */
  backups?: number;
  /** Also echo to stderr (used by `--foreground`). */
  echo?: boolean;
}

const _SECRET_PATTERNS: RegExp[] = [
  /(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
  /("?(?:access_token|refresh_token|client_secret|password|code_verifier|secret-key|secret_key|endpoint_secret)"?\s*[:=]\s*"?)[^"\s,}]+/gi,
  /\bfx[ar]_[A-Za-z0-9_-]{16,}/g,
];

/**
 * Replace token-like substrings by `[redacted]`.
 *
 * @example
 * ```ts
 * redact("Authorization: Bearer abcdefghijkl"); // "Authorization: Bearer [redacted]"
 * ```
 */
export function redact(text: string): string {
  let out = text;
  for (const re of _SECRET_PATTERNS) {
    out = out.replace(
      re,
      (m, prefix?: string) =>
        typeof prefix === "string" && m.startsWith(prefix) ? `${prefix}[redacted]` : "[redacted]",
    );
  }
  return out;
}

/** Create a logger writing to a file (rotated) or to stderr. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const backups = opts.backups ?? 3;
  const enc = new TextEncoder();
  let fh: Deno.FsFile | undefined;
  let size = 0;
  const open = () => {
    if (!opts.file) return;
    fh = Deno.openSync(opts.file, { append: true, create: true, mode: 0o600 });
    size = fh.statSync().size;
  };
  const rotate = () => {
    if (!opts.file || !fh) return;
    fh.close();
    for (let i = backups - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${opts.file}.${i}`, `${opts.file}.${i + 1}`);
      } catch { /* missing backup */ }
    }
    try {
      Deno.renameSync(opts.file, `${opts.file}.1`);
    } catch { /* ignore */ }
    open();
  };
  open();
  const logger: Logger = {
    level: opts.level ?? "info",
    debug: (c, m, ...a) => write("debug", c, m, a),
    info: (c, m, ...a) => write("info", c, m, a),
    warn: (c, m, ...a) => write("warn", c, m, a),
    error: (c, m, ...a) => write("error", c, m, a),
    close() {
      try {
        fh?.close();
      } catch { /* already closed */ }
      fh = undefined;
    },
  };
  function write(level: LogLevel, component: string, msg: string, args: unknown[]) {
    if (_ORDER[level] < _ORDER[logger.level]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${component}] ${
      redact(format(msg, ...args))
    }\n`;
    const bytes = enc.encode(line);
    if (fh) {
      try {
        if (size + bytes.length > maxBytes) rotate();
        fh.writeSync(bytes);
        size += bytes.length;
      } catch {
        // disk full or file gone: fall back to stderr rather than stop
        _toStderr(bytes);
      }
    }
    if (!fh || opts.echo) _toStderr(bytes);
  }
  return logger;
}

/**
 * Write to stderr; a failure is dropped. A detached daemon's stderr is a file on the same disk
 * as its log: when that disk is full, logging must not throw into the code that logs (the
 * service died of exactly that while its database was full).
 */
function _toStderr(bytes: Uint8Array): void {
  try {
    Deno.stderr.writeSync(bytes);
  } catch { /* nowhere left to write: drop the line */ }
}
