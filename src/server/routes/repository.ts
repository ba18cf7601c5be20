import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ControlAccess, type ControlAccessOptions } from '../../core/control-access.js';
import { parseLoadParameters } from '../../core/load-parameters.js';
import { invalidArgument } from '../../protocol/errors.js';
import { describeJsonValue } from '../../protocol/json-codec.js';
import { parseJsonText } from '../../protocol/json-parse.js';
import type { ModelRegistry } from '../../repository/model-registry.js';

export type RepositoryRouteOptions = ControlAccessOptions;

/**
 * Triton's model repository extension. The index answers in every control mode; load and unload only
 * in mode `explicit` (503 with Triton's wording otherwise). Every call needs `Authorization: Bearer <token>` when the
 * server has a control token (src/core/control-access.ts, shared with gRPC).
 */
export function registerRepositoryRoutes(
  app: FastifyInstance,
  registry: ModelRegistry,
  options: RepositoryRouteOptions,
): void {
  const access = new ControlAccess(options);
  const path = (request: FastifyRequest) => request.url.split('?')[0];

  app.post('/v2/repository/index', async (request) => {
    access.authorize(request.headers.authorization);
    const body = optionalObject(request.body, 'repository index request');
    const ready = body.ready;
    if (ready !== undefined && typeof ready !== 'boolean') {
      throw invalidArgument(`repository index request: "ready" must be true or false, got ${describeJsonValue(ready)}`);
    }
    return access.index(registry, ready === true);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (request) => {
    const control = access.control(request.headers.authorization, path(request));
    const parameters = optionalObject(request.body, 'load request').parameters;
    if (
      parameters !== undefined &&
      (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
    ) {
      throw invalidArgument(`load request: "parameters" must be a JSON object, got ${describeJsonValue(parameters)}`);
    }
    const options = parseLoadParameters(request.params.model, parameters as Record<string, unknown> | undefined);
    return control.load(request.params.model, options);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (request) => {
    const control = access.control(request.headers.authorization, path(request));
    optionalObject(request.body, 'unload request');
    await control.unload(request.params.model);
    return {};
  });
}

/** An empty body, or a JSON object (Triton's optional parameters). */
function optionalObject(body: unknown, what: string): Record<string, unknown> {
  if (!Buffer.isBuffer(body) || body.length === 0) return {};
  const value = parseJsonText(body.toString('utf8'), what);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(`${what} must be a JSON object, got ${describeJsonValue(value)}`);
  }
  return value as Record<string, unknown>;
}
