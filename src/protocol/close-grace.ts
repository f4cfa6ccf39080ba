/**
 * How long a stopping app (the server, the plugin, a unit) lets its open HTTP requests finish before it
 * closes their connections.
 */
export const CLOSE_GRACE_MS = 2_000;

/** How often a stopping app closes the connections that became idle since. */
const IDLE_CHECK_MS = 50;

/**
 * Closes a Nest app (its lifecycle hooks, its transports, HTTP), cutting the HTTP connections still busy
 * after `graceMs`: a request that never finishes (a register program that sent half a POST and hung, a
 * browser slow to let go of a page, a client's long wait for a result) must not hold a Windows service stop,
 * an upgrade or a server restart. Every client call is retried under its idempotency key, as after a crash.
 */
export async function closeWithGrace(
  app: { close(): Promise<void>; getHttpServer(): unknown },
  graceMs = CLOSE_GRACE_MS,
): Promise<void> {
  const http = app.getHttpServer() as {
    listening?: boolean;
    closeAllConnections?: () => void;
    closeIdleConnections?: () => void;
  };
  const cut = setTimeout(() => http.closeAllConnections?.(), graceMs);
  // A kept-alive connection whose request finishes during the stop is closed as soon as it is idle: closing
  // only closes the connections idle when it starts, and the others would wait out the grace (or Fastify's
  // 72 s keep-alive), holding every stop that met a busy client for the whole grace. Only once the server
  // has stopped listening: before that (Nest runs the apps' shutdown hooks first) a client may still send
  // its next request on an idle connection, and closing it under that request would reset it unanswered.
  const idle = setInterval(() => {
    if (http.listening === false) http.closeIdleConnections?.();
  }, IDLE_CHECK_MS);
  cut.unref();
  idle.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
    clearInterval(idle);
  }
}
