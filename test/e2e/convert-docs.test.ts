/**
 * docs/convert.md's three commands, exactly as written there: convert a Python model class, serve
 * the repository, curl /infer. Only the ports change (the server picks free ones).
 */
import assert from 'node:assert/strict';
import { exec, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';

const CLI = path.resolve('dist/cli/index.js');
const shell = promisify(exec);

let dir: string;
let env: NodeJS.ProcessEnv;
let commands: { convert: string; serve: string; curl: string };

before(async () => {
  const doc = await readFile('docs/convert.md', 'utf8');
  const lines = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1].trim().split('\n'));
  const find = (start: string) => {
    const found = lines.filter((line) => line.startsWith(start));
    assert.equal(found.length, 1, `docs/convert.md has one sh line starting with "${start}"`);
    return found[0];
  };
  commands = { convert: find('onnx-serve convert '), serve: find('onnx-serve serve '), curl: find('curl ') };

  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-docs-'));
  await copyFile('docs/examples/iris_classifier.py', path.join(dir, 'iris_classifier.py'));
  // `onnx-serve` on PATH, as after `npm install -g onnx-serve`.
  await mkdir(path.join(dir, 'bin'));
  await writeFile(path.join(dir, 'bin', 'onnx-serve'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  await chmod(path.join(dir, 'bin', 'onnx-serve'), 0o755);
  env = { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('convert → serve → curl answers with verified probabilities', async () => {
  const converted = await shell(commands.convert, { cwd: dir, env });
  assert.match(
    converted.stdout,
    /^Exported iris_classifier\.py:build_model to .*models\/iris\/1\/model\.onnx \(opset 17/,
  );
  assert.match(converted.stdout, /^probabilities {2}FP32 .* 0\/21 {8}pass$/m);
  assert.match(converted.stdout, /^PASS$/m);

  assert.match(commands.serve, / --port 8000$/);
  const server = spawn('sh', ['-c', `exec ${commands.serve.replace(/ --port 8000$/, ' --port 0 --grpc-port 0')}`], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let url: string | undefined;
    let verified = false;
    for await (const line of createInterface({ input: server.stdout })) {
      const event = JSON.parse(line) as { url?: string; msg: string; ready?: number };
      url ??= event.url;
      verified ||= event.msg === 'model iris:1 matches its 5 test data sets';
      if (event.ready !== undefined) break;
    }
    assert.ok(url !== undefined && verified, 'the log names the URL and the verification');

    assert.match(commands.curl, /localhost:8000\//);
    const curl = commands.curl.replace('localhost:8000', new URL(url).host);
    const answer = JSON.parse((await shell(curl, { cwd: dir, env })).stdout);
    assert.deepEqual(answer, {
      ...answer,
      model_name: 'iris',
      model_version: '1',
      outputs: [{ ...answer.outputs[0], name: 'probabilities', datatype: 'FP32', shape: [1, 3] }],
    });
    const sum = (answer.outputs[0].data as number[]).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `softmax sums to 1, got ${sum}`);
  } finally {
    server.kill('SIGTERM');
  }
});
