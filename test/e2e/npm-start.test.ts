/**
 * `npm start` compiles only when a source file or build setting is newer than the last build:
 * `scripts/start.sh` run in a throwaway project (a one-line "compiler" that records each build), and
 * `npm start` in this checkout, which the test suite has just built.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DEPLOYED_MALLOC_ENV, DEPLOYED_NODE_FLAGS } from '../helpers/deployed-settings.js';

const run = promisify(execFile);
/**
 * Without npm_* variables: the npm started here must not inherit the settings of the one running the
 * tests; nor the malloc settings start.sh is to supply.
 */
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && !Object.keys(DEPLOYED_MALLOC_ENV).includes(key)),
);

describe('scripts/start.sh decides when to build', () => {
  let project: string;
  const builds = () =>
    existsSync(path.join(project, 'builds.log'))
      ? readFileSync(path.join(project, 'builds.log'), 'utf8').split('\n').filter(Boolean).length
      : 0;
  const start = async () => (await run('bash', ['scripts/start.sh', '--flag'], { cwd: project, env })).stdout;

  before(() => {
    project = mkdtempSync(path.join(tmpdir(), 'onnx-serve-start-'));
    mkdirSync(path.join(project, 'scripts'));
    copyFileSync('scripts/start.sh', path.join(project, 'scripts/start.sh'));
    mkdirSync(path.join(project, 'src'));
    writeFileSync(path.join(project, 'src/index.ts'), 'export {};\n');
    for (const file of ['tsconfig.json', 'tsconfig.build.json']) writeFileSync(path.join(project, file), '{}\n');
    // The "compiler" writes a CLI that prints its arguments and malloc settings, and notes each build.
    writeFileSync(
      path.join(project, 'cli.js'),
      "console.log(process.argv.slice(2).join(' '));\n" +
        "console.log('malloc', process.env.MALLOC_MMAP_THRESHOLD_, process.env.GLIBC_TUNABLES);\n" +
        "console.log('node', process.execArgv.join(' '));\n",
    );
    const build =
      "node -e \"const fs=require('fs');fs.mkdirSync('dist/cli',{recursive:true});" +
      "fs.copyFileSync('cli.js','dist/cli/index.js');" +
      "fs.appendFileSync('builds.log','build\\n')\"";
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'probe', private: true, scripts: { build } }),
    );
    // Older than anything the builds will write.
    const past = new Date(Date.now() - 60_000);
    for (const file of ['src/index.ts', 'src', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) {
      utimesSync(path.join(project, file), past, past);
    }
  });

  after(() => {
    if (project !== undefined) rmSync(project, { recursive: true, force: true });
  });

  it('builds a checkout that was never built, then serves with the arguments given', async () => {
    assert.match(await start(), /^serve --flag$/m);
    assert.equal(builds(), 1);
  });

  it('does not build again when nothing changed', async () => {
    assert.match(await start(), /^serve --flag$/m);
    assert.equal(builds(), 1);
  });

  it('serves with the deployed malloc settings, keeping those the environment already has', async () => {
    const malloc = async (extra: Record<string, string>) => {
      const { stdout } = await run('bash', ['scripts/start.sh'], { cwd: project, env: { ...env, ...extra } });
      return /^malloc (.*)$/m.exec(stdout)?.[1];
    };
    const { MALLOC_MMAP_THRESHOLD_: threshold, GLIBC_TUNABLES: tunables } = DEPLOYED_MALLOC_ENV;
    assert.equal(await malloc({}), `${threshold} ${tunables}`);
    assert.equal(
      await malloc({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }),
      `${threshold} glibc.malloc.arena_max=2:${tunables}`,
    );
    assert.equal(
      await malloc({ MALLOC_MMAP_THRESHOLD_: '1048576', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }),
      '1048576 glibc.malloc.hugetlb=0',
    );
  });

  it("serves with node's deployed flags (V8's garbage collection on the collecting thread alone)", async () => {
    assert.match(await start(), new RegExp(`^node ${DEPLOYED_NODE_FLAGS.join(' ')}$`, 'm'));
  });

  it('builds again after a source file changed', async () => {
    const later = new Date(statSync(path.join(project, 'dist/cli/index.js')).mtimeMs + 2_000);
    utimesSync(path.join(project, 'src/index.ts'), later, later);
    await start();
    assert.equal(builds(), 2);
  });
});

it('npm start on this built checkout goes straight to the server', async () => {
  const built = statSync('dist/cli/index.js').mtimeMs;
  const { stdout } = await run('npm', ['start', '--', '--help'], { env });
  assert.match(stdout, /Usage: onnx-serve serve/);
  assert.doesNotMatch(stdout, /tsc -p/);
  assert.equal(statSync('dist/cli/index.js').mtimeMs, built, 'dist/ was not rewritten');
});
