import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's files stay in src/dashboard (tsc copies no HTML or CSS): the path is the same from
 * src/server/routes (tsx) and dist/server/routes (npm start), and package.json ships the folder.
 */
export const DASHBOARD_ROOT = fileURLToPath(new URL('../../../src/dashboard/', import.meta.url));
/** uPlot's browser build, served from the installed package: the page works offline, no CDN. */
const UPLOT_ROOT = path.dirname(createRequire(import.meta.url).resolve('uplot'));
const UPLOT_FILES = new Set(['/uPlot.iife.min.js', '/uPlot.min.css']);

export function registerDashboardRoutes(app: FastifyInstance): void {
  void app.register(fastifyStatic, { root: DASHBOARD_ROOT, prefix: '/dashboard/' });
  void app.register(fastifyStatic, {
    root: UPLOT_ROOT,
    prefix: '/dashboard/vendor/',
    decorateReply: false,
    allowedPath: (pathName) => UPLOT_FILES.has(pathName),
  });
  app.get('/', (_request, reply) => reply.sendFile('index.html', DASHBOARD_ROOT));
}
