import type { FastifyInstance } from 'fastify';
import { modelConfiguration } from '../../core/model-configuration.js';
import { modelMetadata } from '../../core/model-metadata.js';
import { modelReadiness } from '../../core/readiness.js';
import type { ServerInfo } from '../../core/server-info.js';
import type { ModelRegistry } from '../../repository/model-registry.js';
import { notReady } from '../../repository/model-version.js';

interface ModelParams {
  model: string;
  version?: string;
}

export function registerMetadataRoutes(app: FastifyInstance, registry: ModelRegistry, info: ServerInfo): void {
  app.get('/v2', async () => ({ name: info.name, version: info.version, extensions: info.extensions }));

  const metadata = async (request: { params: ModelParams }) => {
    const { model, version } = request.params;
    const found = registry.resolve(model, version);
    // A pipeline has metadata of its own; a model that loads on demand is loaded to read its signature.
    if (found.spec.config.pipeline === undefined)
      return modelMetadata(registry, await registry.acquire(model, version));
    if (found.state !== 'READY') throw notReady(found);
    return modelMetadata(registry, found);
  };
  app.get<{ Params: ModelParams }>('/v2/models/:model', metadata);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version', metadata);

  // Triton's model configuration extension, in its ModelConfig form.
  const config = async (request: { params: ModelParams }) =>
    modelConfiguration(await registry.acquire(request.params.model, request.params.version));
  app.get<{ Params: ModelParams }>('/v2/models/:model/config', config);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version/config', config);

  const ready = async (request: { params: ModelParams }, reply: { code: (n: number) => unknown }) => {
    const readiness = modelReadiness(registry, request.params.model, request.params.version);
    // The status code is the answer for the original protocol and Triton; the body for newer clients.
    reply.code(readiness.ready ? 200 : 503);
    return readiness;
  };
  app.get<{ Params: ModelParams }>('/v2/models/:model/ready', ready);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version/ready', ready);
}
