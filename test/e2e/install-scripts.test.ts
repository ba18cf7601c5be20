/**
 * A fresh install with this project's npm configuration (`.npmrc` and package.json's `allowScripts`)
 * never runs onnxruntime-node's install script, which would download CUDA libraries from NuGet, and
 * prints no warning: with the npm on PATH (npm 11) and with npm 10.
 *
 * The probe is a real `npm ci`: onnxruntime-node is a registry dependency in a lockfile, served from a
 * private npm cache, with its real package.json and install script (without its 288 MB of binaries).
 * The script honours global-agent's proxy variables, so a local proxy records every download it tries.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ORT_DIR = path.resolve('node_modules/onnxruntime-node');
const ORT_VERSION = (JSON.parse(readFileSync(path.join(ORT_DIR, 'package.json'), 'utf8')) as { version: string })
  .version;
const PROJECT_ALLOW_SCRIPTS = (JSON.parse(readFileSync('package.json', 'utf8')) as { allowScripts?: object })
  .allowScripts;
const PROJECT_NPMRC = readFileSync('.npmrc', 'utf8');
/** npm 10 from the registry through npx (cached after the first run). */
const NPM_10 = ['npx', '--prefer-offline', '-y', 'npm@10'];
const NPM_ON_PATH = ['npm'];

interface ProbeResult {
  code: number;
  stderr: string;
  /** Hosts the install script tried to reach, as `host:port`. */
  connects: string[];
}

/** Without npm_* variables: a test started by `npm test` must not pass its npm's settings on. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
  return { ...env, ...extra };
}

async function runCommand(
  command: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(command[0], command.slice(1), { cwd, env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

describe('npm install leaves onnxruntime-node’s CUDA download alone', { timeout: 300_000 }, () => {
  let root: string;
  let cache: string;
  let integrity: string;
  let proxy: Server;
  let proxyUrl: string;
  const connects: string[] = [];

  before(async () => {
    // Inside the project's node_modules, so that the install script finds its own dependencies
    // (global-agent) by walking up, as it would in a real install.
    mkdirSync('node_modules/.cache', { recursive: true });
    root = mkdtempSync(path.resolve('node_modules/.cache/install-probe-'));
    cache = path.join(root, 'npm-cache');

    const trimmed = path.join(root, 'onnxruntime-node');
    mkdirSync(trimmed);
    cpSync(path.join(ORT_DIR, 'script'), path.join(trimmed, 'script'), { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(ORT_DIR, 'package.json'), 'utf8')) as Record<string, unknown> & {
      scripts: Record<string, string>;
    };
    assert.match(
      manifest.scripts.postinstall ?? '',
      /script\/install/,
      'onnxruntime-node still has its install script',
    );
    // Its dependencies (global-agent, ...) resolve from the project's node_modules instead.
    const trimmedManifest: Record<string, unknown> = {
      ...manifest,
      scripts: { postinstall: manifest.scripts.postinstall },
      files: ['script'],
    };
    delete trimmedManifest.dependencies;
    delete trimmedManifest.devDependencies;
    writeFileSync(path.join(trimmed, 'package.json'), JSON.stringify(trimmedManifest));
    const packed = await runCommand(
      ['npm', 'pack', '--ignore-scripts', '--pack-destination', root],
      trimmed,
      cleanEnv(),
    );
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = path.join(root, packed.stdout.trim().split('\n').pop()!);
    integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    const added = await runCommand(['npm', 'cache', 'add', '--cache', cache, tarball], root, cleanEnv());
    assert.equal(added.code, 0, added.stderr);

    proxy = createServer((request, response) => {
      connects.push(`${request.method} ${request.url}`);
      response.writeHead(403).end();
    });
    proxy.on('connect', (request, socket) => {
      connects.push(request.url ?? '');
      socket.on('error', () => {});
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => proxy?.close(resolve));
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  /** `npm ci` of a project whose only dependency is onnxruntime-node, with the given npm settings. */
  async function probe(
    name: string,
    npm: string[],
    config: { npmrc?: string; allowScripts?: object },
  ): Promise<ProbeResult> {
    const dir = path.join(root, name);
    mkdirSync(dir);
    const dependencies = { 'onnxruntime-node': ORT_VERSION };
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name, version: '1.0.0', private: true, dependencies, allowScripts: config.allowScripts }),
    );
    writeFileSync(
      path.join(dir, 'package-lock.json'),
      JSON.stringify({
        name,
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name, version: '1.0.0', dependencies },
          'node_modules/onnxruntime-node': {
            version: ORT_VERSION,
            resolved: `https://registry.npmjs.org/onnxruntime-node/-/onnxruntime-node-${ORT_VERSION}.tgz`,
            integrity,
            hasInstallScript: true,
          },
        },
      }),
    );
    if (config.npmrc !== undefined) writeFileSync(path.join(dir, '.npmrc'), config.npmrc);
    connects.length = 0;
    const result = await runCommand(
      [...npm, 'ci', '--offline', '--cache', cache, '--no-audit', '--no-fund'],
      dir,
      cleanEnv({ GLOBAL_AGENT_HTTPS_PROXY: proxyUrl, GLOBAL_AGENT_HTTP_PROXY: proxyUrl }),
    );
    return { code: result.code, stderr: result.stderr, connects: [...connects] };
  }

  it('without the project’s settings, the probe sees the install script try to reach NuGet', async () => {
    const result = await probe('control', NPM_ON_PATH, {});
    assert.ok(
      result.connects.some((target) => target.startsWith('api.nuget.org:')),
      `expected a CONNECT to api.nuget.org, got ${JSON.stringify(result.connects)}`,
    );
    assert.notEqual(result.code, 0, 'the refused download fails the install');
  });

  for (const [line, npm] of [
    ['the npm on PATH', NPM_ON_PATH],
    ['npm 10', NPM_10],
  ] as const) {
    it(`with the project’s .npmrc and allowScripts, ${line} installs without a download attempt or a warning`, async () => {
      const version = await runCommand([...npm, '--version'], root, cleanEnv());
      assert.equal(version.code, 0, version.stderr);
      const result = await probe(`project-npm-${version.stdout.trim()}`, npm, {
        npmrc: PROJECT_NPMRC,
        allowScripts: PROJECT_ALLOW_SCRIPTS,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.connects, []);
      assert.doesNotMatch(result.stderr, /npm warn/i);
    });

    it(`${line} reads this project’s configuration without a warning`, async () => {
      const result = await runCommand([...npm, 'pkg', 'get', 'name'], process.cwd(), cleanEnv());
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), '"onnx-serve"');
      assert.doesNotMatch(result.stderr, /npm warn/i);
    });
  }
});
