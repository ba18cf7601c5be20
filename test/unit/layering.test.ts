/**
 * The core never imports a transport: the ESLint rule that says so is in force, and src/core/ obeys it.
 * (The suite runs this, so a transport import into the core fails CI even where lint is not run.)
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint();
const restricted = (results: ESLint.LintResult[]) =>
  results.flatMap((result) =>
    result.messages
      .filter((message) => message.ruleId === 'no-restricted-imports')
      .map((message) => `${result.filePath}:${message.line}: ${message.message}`),
  );

it('src/core/ imports no transport (server, gRPC, in-process API, /predict, CLI, bench)', async () => {
  assert.deepEqual(restricted(await eslint.lintFiles(['src/core/**/*.ts'])), []);
});

it('the rule refuses a transport import into src/core/', async () => {
  const probe = [
    "import Fastify from 'fastify';",
    "import * as grpc from '@grpc/grpc-js';",
    "import { registerHealthRoutes } from '../server/routes/health.js';",
    "import { startGrpcServer } from '../grpc/server.js';",
    "import { loadModel } from '../library/in-process.js';",
    "import { predictUploads } from '../processing/predict.js';",
    'export const all = [Fastify, grpc, registerHealthRoutes, startGrpcServer, loadModel, predictUploads];',
    '',
  ].join('\n');
  const found = restricted(await eslint.lintText(probe, { filePath: 'src/core/probe.ts' }));
  assert.equal(found.length, 6, found.join('\n'));
});
