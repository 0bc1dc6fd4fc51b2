/**
 * Typed errors: every API failure arrives as one of these, chosen by the server's error code, then by the HTTP
 * status. The table mirrors the Python SDK's (`cove.sdk._errors`), so both SDKs raise the same kinds.
 */

/** Base of every error the SDK throws; `code` is the server's machine-readable code. */
export class CoveError extends Error {
  /** The server's error code (`sandbox_not_found`, `session_exited`, ...), or an SDK code. */
  readonly code: string;
  /** The HTTP status, when the error came from an HTTP reply. */
  readonly status: number | undefined;

  constructor(message: string, options: { code?: string; status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? "error";
    this.status = options.status;
  }
}

/** The API key is missing or wrong (HTTP 401). */
export class AuthError extends CoveError {}

/** The thing named does not exist (HTTP 404). */
export class NotFound extends CoveError {}

/** No sandbox has that id. */
export class SandboxNotFound extends NotFound {}

/** No file at that path in the sandbox. */
export class FileNotFound extends NotFound {}

/** No process with that id in the sandbox. */
export class ProcessNotFound extends NotFound {}

/** No agent session with that id in the sandbox. */
export class SessionNotFound extends NotFound {}

/** `resume` named a Claude conversation that does not exist in this sandbox; nothing was started. */
export class ResumeNotFound extends NotFound {}

/** No checkpoint with that id. */
export class CheckpointNotFound extends NotFound {}

/** The request clashes with the current state (HTTP 409). */
export class Conflict extends CoveError {}

/** The sandbox has stopped; it cannot run commands, serve files or host agents any more. */
export class SandboxNotRunning extends Conflict {}

/** The agent session has exited: it takes no more prompts, interrupts or configuration. */
export class SessionExited extends Conflict {}

/** The request was malformed or failed validation (HTTP 400/422); the message names the field. */
export class InvalidRequest extends CoveError {}

/** The path leaves the sandbox's files — by `..`, an absolute host path, or a symlink (HTTP 403). */
export class PathOutsideSandbox extends CoveError {}

/** A command ran past its timeout and was killed. */
export class CommandTimeout extends CoveError {}

/** The server could not be reached, or a stream broke and could not be resumed. */
export class ConnectionLost extends CoveError {}

/** An `error` event of an agent session (`cli_error`, `turn_failed`, ...); `event` is the event itself. */
export class AgentError extends CoveError {
  /** The journalled `error` event. */
  readonly event: { code: string; message: string; seq: number };

  constructor(event: { code: string; message: string; seq: number }) {
    super(event.message, { code: event.code });
    this.event = event;
  }
}

type ErrorClass = new (message: string, options?: { code?: string; status?: number }) => CoveError;

const BY_CODE: Record<string, ErrorClass> = {
  sandbox_not_found: SandboxNotFound,
  file_not_found: FileNotFound,
  process_not_found: ProcessNotFound,
  session_not_found: SessionNotFound,
  resume_not_found: ResumeNotFound,
  checkpoint_not_found: CheckpointNotFound,
  sandbox_not_running: SandboxNotRunning,
  session_exited: SessionExited,
  path_outside_sandbox: PathOutsideSandbox,
  command_timeout: CommandTimeout,
  unauthorized: AuthError,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: InvalidRequest,
  401: AuthError,
  404: NotFound,
  409: Conflict,
  422: InvalidRequest,
};

/**
 * The typed error for a server error `{code, message}` with an HTTP `status` (0 when it came over a WebSocket).
 *
 * @example
 * throw errorFrom(404, "sandbox_not_found", "no sandbox sbx_1"); // a SandboxNotFound
 */
export function errorFrom(status: number, code: string, message: string): CoveError {
  const cls = BY_CODE[code] ?? BY_STATUS[status] ?? CoveError;
  return new cls(message, status ? { code, status } : { code });
}
