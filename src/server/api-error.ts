/**
 * The one error type the server's HTTP layer answers with: `{error: {code, message}}` and a proper status.
 * Services throw it for anything the caller did wrong or must wait for; the exception filter maps it.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** For 429 and 503: when to try again (sent as Retry-After). */
    readonly extra: { retryAfterSeconds?: number } = {},
  ) {
    super(message);
  }

  static badRequest(code: string, message: string): ApiError {
    return new ApiError(400, code, message);
  }
  static unauthorized(
    message = 'missing or unknown bearer token; send Authorization: Bearer <token>',
  ): ApiError {
    return new ApiError(401, 'unauthorized', message);
  }
  static forbidden(message: string): ApiError {
    return new ApiError(403, 'forbidden', message);
  }
  static notFound(what: string): ApiError {
    return new ApiError(404, 'not_found', `${what} not found`);
  }
  static conflict(code: string, message: string): ApiError {
    return new ApiError(409, code, message);
  }
  static unprocessable(code: string, message: string): ApiError {
    return new ApiError(422, code, message);
  }
}
