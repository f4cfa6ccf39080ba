/**
 * What an adapter gets from the plugin when it is built: where relative manifest paths start, the clock it
 * waits with, and the few outside things a test may want to replace. Kept apart from the registry so the
 * adapters can name it without importing the registry that imports them.
 */
import { Clock } from '../protocol/clock';

export interface AdapterEnv {
  /** The manifest's folder: relative paths in the manifest (`./var/inbox`) resolve against it. */
  baseDir: string;
  /**
   * Where an adapter may keep small state of its own (e.g. the serial display's order sequence): the
   * plugin's data folder, not the manifest's folder, which may be a read-only program folder (or the
   * product's own manifests/). Adapters fall back to `baseDir` only when it is absent (specs).
   */
  stateDir?: string;
  clock: Clock;
  /** Environment variables, for `secretEnv`; defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The HTTP client for http-hook callbacks; defaults to the global fetch. */
  fetch?: typeof fetch;
  /**
   * Problems the adapter survives and retries by itself (an inbox that went away, a file it could not
   * move). Reported once each time the adapter runs into one; ignored when not given.
   */
  onError?: (error: Error) => void;
}
