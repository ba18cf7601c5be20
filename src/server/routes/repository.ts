import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidArgument, notFound, ServeError } from '../../protocol/errors.js';
import { describeJsonValue } from '../../protocol/json-codec.js';
import { parseJsonText } from '../../protocol/json-parse.js';
import type { ControlMode, ModelControl } from '../../core/model-control.js';

export interface RepositoryRouteOptions {
  mode: ControlMode;
  /** Undefined only in mode none, or with --insecure-control. */
  token?: string;
  control?: ModelControl;
}

/**
 * Triton's model repository extension. Off in mode `none` (404 naming the mode); otherwise every
 * call needs `Authorization: Bearer <token>`, compared in constant time.
 */
export function registerRepositoryRoutes(app: FastifyInstance, options: RepositoryRouteOptions): void {
  const expected = options.token === undefined ? undefined : digest(options.token);

  const guard = (request: FastifyRequest): ModelControl => {
    if (options.mode === 'none' || options.control === undefined) {
      throw notFound(
        `model control is off (--model-control-mode none); start the server with --model-control-mode poll or explicit to use ${request.url.split('?')[0]}`,
      );
    }
    if (expected !== undefined) {
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer (.+)$/i.exec(header.trim()) : null;
      if (match === null) {
        throw new ServeError(
          'UNAUTHENTICATED',
          'model control needs the header Authorization: Bearer <token> (the --control-token or ONNX_SERVE_CONTROL_TOKEN of the server)',
        );
      }
      if (!timingSafeEqual(digest(match[1]), expected)) {
        throw new ServeError('UNAUTHENTICATED', 'the bearer token does not match the server control token');
      }
    }
    return options.control;
  };

  app.post('/v2/repository/index', async (request) => {
    const control = guard(request);
    const body = optionalObject(request.body, 'repository index request');
    const ready = body.ready;
    if (ready !== undefined && typeof ready !== 'boolean') {
      throw invalidArgument(`repository index request: "ready" must be true or false, got ${describeJsonValue(ready)}`);
    }
    return control.index(ready === true);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (request) => {
    const control = guard(request);
    optionalObject(request.body, 'load request');
    return control.load(request.params.model);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (request) => {
    const control = guard(request);
    optionalObject(request.body, 'unload request');
    await control.unload(request.params.model);
    return {};
  });
}

// Hashes have equal lengths whatever the token, which timingSafeEqual needs, and hide the token's length.
function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** An empty body, or a JSON object (Triton's optional parameters; none is acted on yet but `ready`). */
function optionalObject(body: unknown, what: string): Record<string, unknown> {
  if (!Buffer.isBuffer(body) || body.length === 0) return {};
  const value = parseJsonText(body.toString('utf8'), what);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(`${what} must be a JSON object, got ${describeJsonValue(value)}`);
  }
  return value as Record<string, unknown>;
}
