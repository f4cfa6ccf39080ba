/**
 * Errors by layer. Every error payconnect raises on purpose is a PayconnectError with a stable `code`
 * (for logs, counters and support scripts) and a message written for the person who has to act on it.
 * Subclasses name the layer; raw vendor or OS codes are mapped to them explicitly where they arise.
 */
export abstract class PayconnectError extends Error {
  /** Stable, machine-readable code, e.g. `money.too_many_decimals`. */
  readonly code: string;
  /** The field, file, device or peer the error is about, when there is one. */
  readonly subject?: string;

  protected constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.subject = options?.subject;
  }
}

/** Bad bytes or bad values in a wire format, an amount or a signature: the input is wrong, not the system. */
export class ProtocolError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}

/** A failure to move bytes: a socket that cannot bind, a peer that never acknowledged, a network that is down. */
export class TransportError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}

/** An adapter manifest that cannot be used; `subject` names the field. */
export class ManifestError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}

/** A payment provider answered with an error or not at all. */
export class ProviderError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}

/** The host system could not be told a result (result file, callback, DLL call). */
export class WriteBackError extends PayconnectError {
  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(code, message, options);
  }
}
