/**
 * JSON answers carry `Content-Type: application/json` with no parameters, as Triton sends it.
 * fastify appends `; charset=utf-8` to every JSON answer, and some clients (KServe's Python REST
 * client) read an error's body only when the type is exactly `application/json`: with the charset
 * they show a bare "400 Bad Request" instead of the server's message. JSON is UTF-8 by definition
 * (RFC 8259), so the parameter says nothing.
 */
import type { FastifyInstance } from 'fastify';

export const JSON_CONTENT_TYPE = 'application/json';

/**
 * An onSend hook on `app`'s scope that drops the parameters fastify adds to `application/json`;
 * synchronous (a `done` callback, no promise), as it runs on every answer.
 */
export function sendPlainJsonContentType(app: FastifyInstance): void {
  app.addHook('onSend', (_request, reply, payload, done) => {
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type !== JSON_CONTENT_TYPE && type.startsWith(`${JSON_CONTENT_TYPE};`)) {
      void reply.header('content-type', JSON_CONTENT_TYPE);
    }
    done(null, payload);
  });
}
