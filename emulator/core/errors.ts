// Errors of the management API, answered as OneAccess answers them: `{"error_code": "...", "error_msg": "..."}`
// and nothing else. OneAccess documents the shape and that a bad request is a 400, but not the codes of these
// APIs: the codes below are the emulator's own, in the `CATEGORY.NNNN` form of the codes OneAccess does
// publish (such as `PARAM.0004`). Messages name the field.

export type ErrorStatus = 400 | 401 | 404 | 500;

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  body(): { error_code: string; error_msg: string } {
    return { error_code: this.code, error_msg: this.message };
  }
}

export const ERROR_CODES = {
  required: "PARAM.0001",
  invalid: "PARAM.0002",
  body: "PARAM.0003",
  notFound: "RESOURCE.0001",
  exists: "RESOURCE.0002",
  conflict: "RESOURCE.0003",
  checkUrl: "SYNC.0001",
  retry: "SYNC.0002",
  unauthorized: "AUTH.0001",
  credentials: "AUTH.0002",
  noSuchApi: "API.0001",
  internal: "SYSTEM.0001",
} as const;

export const errors = {
  required: (field: string) => new ApiError(400, ERROR_CODES.required, `${field} is required`),
  invalid: (field: string, why: string) => new ApiError(400, ERROR_CODES.invalid, `${field} ${why}`),
  body: () => new ApiError(400, ERROR_CODES.body, "the request body must be a JSON object"),
  notFound: (what: string) => new ApiError(400, ERROR_CODES.notFound, `${what} does not exist`),
  exists: (what: string) => new ApiError(400, ERROR_CODES.exists, `${what} already exists`),
  conflict: (message: string) => new ApiError(400, ERROR_CODES.conflict, message),
  checkUrl: (message: string) => new ApiError(400, ERROR_CODES.checkUrl, message),
  retry: (message: string) => new ApiError(400, ERROR_CODES.retry, message),
  unauthorized: (message: string) => new ApiError(401, ERROR_CODES.unauthorized, message),
  credentials: () => new ApiError(400, ERROR_CODES.credentials, "client_id or client_secret is invalid"),
  noSuchApi: (method: string, path: string) => new ApiError(404, ERROR_CODES.noSuchApi, `no such API: ${method} ${path}`),
  internal: () => new ApiError(500, ERROR_CODES.internal, "internal error"),
};
