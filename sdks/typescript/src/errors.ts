/**
 * Typed errors: every API failure arrives as one of these, chosen by the server's error code, then by the HTTP
 * status. The table is the one in `docs/names.md`, which the Python SDK (`cove.sdk._errors`) follows too — both
 * are tested against it — so both SDKs raise the same class, under the same name, for the same code. A code
 * this SDK does not know yet still gives the class of its status (or `CoveError`) with its code and message.
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
    this.code = options.code ?? (new.target as typeof CoveError).defaultCode;
    this.status = options.status;
  }

  /** The code of an error the SDK throws itself, when none is given. */
  static defaultCode = "error";
}

/** The API key is missing or wrong (HTTP 401). */
export class AuthError extends CoveError {}

/** The key may not do this (HTTP 403). */
export class Forbidden extends CoveError {}

/** The path leaves the sandbox's files — by `..`, an absolute host path, or a symlink (HTTP 403). */
export class PathOutsideSandbox extends Forbidden {}

/** The sandbox's own user may not touch that file (HTTP 403). */
export class PermissionDenied extends Forbidden {}

/** The server does not allow the network mode asked for (HTTP 403). */
export class NetworkModeForbidden extends Forbidden {}

/** The thing named does not exist (HTTP 404). */
export class NotFound extends CoveError {}

/** No sandbox has that id. */
export class SandboxNotFound extends NotFound {}

/** No checkpoint with that id (or it was deleted). */
export class CheckpointNotFound extends NotFound {}

/** No file at that path in the sandbox. */
export class FileNotFound extends NotFound {}

/** No process with that id in the sandbox. */
export class ProcessNotFound extends NotFound {}
export class PtyNotFound extends NotFound {}

/** No agent session with that id in the sandbox. */
export class SessionNotFound extends NotFound {}

/** `resume` named a Claude conversation Cove cannot find; nothing was started. */
export class ResumeNotFound extends NotFound {}

/** The agent session never asked for a permission with that request id. */
export class PermissionNotFound extends NotFound {}
export class TurnNotFound extends NotFound {}
/** The sandbox has not exposed that port (or it was closed). */
export class PortNotFound extends NotFound {}

/** The request clashes with the current state (HTTP 409). */
export class Conflict extends CoveError {}

/** The sandbox has stopped; it cannot run commands, serve files or host agents any more. */
export class SandboxNotRunning extends Conflict {}

/**
 * The agent session has exited: it takes no more prompts, interrupts or configuration — or it exited before
 * the turn being waited for completed.
 */
export class SessionExited extends Conflict {
  static override defaultCode = "session_exited";
}

/** Something already exists at that path. */
export class AlreadyExists extends Conflict {}

/** The directory is not empty (remove it with `recursive: true`). */
export class DirectoryNotEmpty extends Conflict {}

/** The process's standard input is closed, or was never opened. */
export class StdinClosed extends Conflict {}

/**
 * The permission request was decided before: answered by a client (maybe another one), denied by the session's
 * timeout, or by an interrupt. A request is decided once.
 */
export class AlreadyResolved extends Conflict {}

/** The request was malformed or failed validation (HTTP 400/422); the message names the field. */
export class InvalidRequest extends CoveError {}

/** A file was expected, and the path is a directory. */
export class IsADirectory extends InvalidRequest {}

/** A directory was expected, and the path is something else. */
export class NotADirectory extends InvalidRequest {}

/** The command's program does not exist in the sandbox. */
export class CommandNotFound extends InvalidRequest {}

/** The request's body is larger than the server accepts (HTTP 413). */
export class PayloadTooLarge extends CoveError {}

/** The upload would take the sandbox past its `diskMb` quota (HTTP 413); the sandbox keeps running. */
export class DiskQuotaExceeded extends PayloadTooLarge {}

/** The key has as many sandboxes (or sessions) as its quota allows (HTTP 429). */
export class QuotaExceeded extends CoveError {}

/** Too many requests in too short a time; try again later (HTTP 429). */
export class RateLimited extends CoveError {}

/** The server failed to do what it should have been able to (HTTP 5xx). */
export class ServerError extends CoveError {}

/** The sandbox could not be started (HTTP 500). */
export class SandboxStartFailed extends ServerError {}

/** The sandbox does not answer, e.g. it stopped during the request (HTTP 503). */
export class SandboxUnavailable extends ServerError {}

/** The agent session's runner does not answer (HTTP 503). */
export class AgentUnavailable extends SandboxUnavailable {}

/** A command ran past its timeout and was killed. */
export class CommandTimeout extends CoveError {
  static override defaultCode = "command_timeout";
}

/** The server could not be reached, or a stream broke and could not be resumed. */
export class ConnectionLost extends CoveError {
  static override defaultCode = "connection_lost";
}

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

/** Every code the server sends, and the codes the SDK makes itself (`docs/names.md`, "Errors"). */
export const BY_CODE: Readonly<Record<string, ErrorClass>> = {
  unauthorized: AuthError,
  forbidden: Forbidden,
  path_outside_sandbox: PathOutsideSandbox,
  permission_denied: PermissionDenied,
  network_mode_forbidden: NetworkModeForbidden,
  not_found: NotFound,
  sandbox_not_found: SandboxNotFound,
  checkpoint_not_found: CheckpointNotFound,
  file_not_found: FileNotFound,
  process_not_found: ProcessNotFound,
  pty_not_found: PtyNotFound,
  session_not_found: SessionNotFound,
  resume_not_found: ResumeNotFound,
  permission_not_found: PermissionNotFound,
  turn_not_found: TurnNotFound,
  port_not_found: PortNotFound,
  key_not_found: NotFound,
  token_not_found: NotFound,
  conflict: Conflict,
  sandbox_not_running: SandboxNotRunning,
  session_exited: SessionExited,
  stopping: SessionExited,
  already_exists: AlreadyExists,
  directory_not_empty: DirectoryNotEmpty,
  stdin_closed: StdinClosed,
  network_mode_fixed: Conflict,
  already_resolved: AlreadyResolved,
  invalid_request: InvalidRequest,
  validation_error: InvalidRequest,
  invalid_argument: InvalidRequest,
  invalid_path: InvalidRequest,
  invalid_frame: InvalidRequest,
  bad_request: InvalidRequest,
  unknown_op: InvalidRequest,
  not_a_regular_file: InvalidRequest,
  request_header_fields_too_large: InvalidRequest,
  is_a_directory: IsADirectory,
  not_a_directory: NotADirectory,
  command_not_found: CommandNotFound,
  payload_too_large: PayloadTooLarge,
  too_large: PayloadTooLarge,
  disk_quota_exceeded: DiskQuotaExceeded,
  quota_exceeded: QuotaExceeded,
  rate_limited: RateLimited,
  internal_error: ServerError,
  internal: ServerError,
  io_error: ServerError,
  protocol_error: ServerError,
  guest_error: ServerError,
  sandbox_start_failed: SandboxStartFailed,
  sandbox_unavailable: SandboxUnavailable,
  agent_unavailable: AgentUnavailable,
  checkpoint_unavailable: SandboxUnavailable,
  bad_gateway: ServerError,
  port_not_listening: ServerError,
  gateway_timeout: ServerError,
  network_unavailable: ServerError,
  command_timeout: CommandTimeout,
  connection_lost: ConnectionLost,
};

/** For a code not in `BY_CODE`: the class of its HTTP status. */
export const BY_STATUS: Readonly<Record<number, ErrorClass>> = {
  400: InvalidRequest,
  401: AuthError,
  403: Forbidden,
  404: NotFound,
  405: InvalidRequest,
  409: Conflict,
  413: PayloadTooLarge,
  422: InvalidRequest,
  429: RateLimited,
};

/**
 * The typed error for a server error `{code, message}` with an HTTP `status` (0 when it came over a WebSocket).
 *
 * @example
 * throw errorFrom(404, "sandbox_not_found", "no sandbox sbx_1"); // a SandboxNotFound
 */
export function errorFrom(status: number, code: string, message: string): CoveError {
  const cls = BY_CODE[code] ?? BY_STATUS[status] ?? (status >= 500 ? ServerError : CoveError);
  return new cls(message, status ? { code, status } : { code });
}
