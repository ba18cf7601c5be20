import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import ts from 'typescript';
import type { RunningServer } from '../../src/server/start.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const CLIENT_ENTRY = path.join(SRC, 'client', 'index.ts');

/** Every source file the client's entry reaches through relative imports (type-only ones included). */
function importGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (graph.has(file)) continue;
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const specifiers: string[] = [];
    const visit = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
        specifiers.push((node.moduleSpecifier as ts.StringLiteral).text);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        specifiers.push((node.arguments[0] as ts.StringLiteral).text);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    graph.set(file, specifiers);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) pending.push(path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts')));
    }
  }
  return graph;
}

/** Identifiers that exist in Node only: a reference would throw (or differ) in a browser. */
const NODE_ONLY_GLOBALS = ['Buffer', 'process', 'require', '__dirname', '__filename', 'global', 'setImmediate'];

function nodeOnlyIdentifiers(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && NODE_ONLY_GLOBALS.includes(node.text)) {
      const parent = node.parent;
      // A property name (`x.process`, `{ process: … }`) is not the global.
      const isPropertyName =
        (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
        (ts.isPropertyAssignment(parent) && parent.name === node);
      if (!isPropertyName) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        found.push(`${path.relative(SRC, file)}:${line + 1} ${node.text}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('onnx-serve/client is browser-safe', () => {
  test("the client's import graph imports only relative modules and uses no Node-only globals", () => {
    const graph = importGraph(CLIENT_ENTRY);
    assert.ok(graph.size >= 6, `the graph has ${graph.size} files; the scan did not follow the imports`);
    const external = [...graph].flatMap(([file, specifiers]) =>
      specifiers.filter((s) => !s.startsWith('.')).map((s) => `${path.relative(SRC, file)} imports ${s}`),
    );
    assert.deepEqual(external, []);
    assert.deepEqual([...graph.keys()].flatMap(nodeOnlyIdentifiers), []);
  });

  test('the scan catches a Node-only import and Buffer', () => {
    // The checks above would pass vacuously if the scanners saw nothing; prove they see.
    const graph = importGraph(path.join(SRC, 'protocol', 'shape.ts'));
    assert.ok([...graph.values()].flat().every((s) => s.startsWith('.')));
    assert.ok(
      importGraph(path.join(SRC, 'core', 'server-info.ts'))
        .get(path.join(SRC, 'core', 'server-info.ts'))!
        .includes('node:fs'),
    );
    assert.ok(
      nodeOnlyIdentifiers(path.join(SRC, 'server', 'routes', 'infer.ts')).some((hit) => hit.endsWith(' Buffer')),
    );
  });
});

describe('onnx-serve/client in Chromium', () => {
  let dir: string;
  let server: RunningServer;
  let browser: Browser;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-browser-'));
    await writeIdentityModel(dir, 'identity', ['FP32', 'INT64', 'BYTES', 'FP16']);
    server = await startTestServer({ modelRepository: dir });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('health, metadata, JSON and binary infer and a typed 404 work in a browser page', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // The page loads the client's TypeScript sources as ES modules, transpiled one file at a time,
    // from the server's origin (so no CORS): exactly the import graph, no bundler in between.
    await page.route(`${server.url}/__src/**`, async (route) => {
      const relative = new URL(route.request().url()).pathname.slice('/__src/'.length).replace(/\.js$/, '.ts');
      const file = path.join(SRC, relative);
      const output = ts.transpileModule(readFileSync(file, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      });
      await route.fulfill({ contentType: 'text/javascript', body: output.outputText });
    });
    await page.goto(`${server.url}/v2`);

    // A string, not a function: tsx would compile a function with helpers (__name) the page lacks.
    const result = await page.evaluate(`(async () => {
      const { InferenceClient, InferenceServerError } = await import('/__src/client/index.js');
      const client = new InferenceClient(location.origin, { retries: 0 });
      const inputs = {
        x_fp32: { shape: [1, 3], data: new Float32Array([1.5, -2, 3.25]) },
        x_int64: { shape: [1, 2], data: new BigInt64Array([2n ** 60n, -1n]) },
        x_bytes: { shape: [1, 2], data: ['héllo', ''] },
        x_fp16: { shape: [1, 1], data: new Uint16Array([0x3c00]), datatype: 'FP16' },
      };
      const summary = (answer) =>
        Object.fromEntries(
          Object.entries(answer.outputs).map(([name, tensor]) => [
            name,
            tensor.data.constructor.name + ':' + Array.from(tensor.data, String).join(','),
          ]),
        );
      let notFound = '';
      try {
        await client.modelMetadata('nope');
      } catch (error) {
        notFound = [error instanceof InferenceServerError, error.status, error.message].join(' ');
      }
      return {
        live: await client.live(),
        ready: await client.ready(),
        model: (await client.modelMetadata('identity')).name,
        json: summary(await client.infer('identity', inputs, { binary: false })),
        binary: summary(await client.infer('identity', inputs, { binary: true })),
        notFound,
      };
    })()`);

    const expected = {
      y_fp32: 'Float32Array:1.5,-2,3.25',
      y_int64: 'BigInt64Array:1152921504606846976,-1',
      y_bytes: 'Array:héllo,',
      y_fp16: 'Uint16Array:15360',
    };
    assert.deepEqual(result, {
      live: true,
      ready: true,
      model: 'identity',
      json: expected,
      binary: expected,
      notFound: "true 404 Request for unknown model: 'nope' is not found; models served: identity",
    });
    assert.deepEqual(errors, []);
  });
});
