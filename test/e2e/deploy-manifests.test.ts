/**
 * The deployment files cannot drift from the server: the Dockerfile's start command and the
 * Kubernetes/KServe args parse with the real CLI to the ports the manifests declare, every probe path
 * answers 200 on a running server, and the user, ports and names agree across the files.
 */
import { Command } from 'commander';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { registerServeCommand } from '../../src/cli/serve.js';
import { DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, type RunningServer } from '../../src/server/start.js';
import { DEPLOYED_MALLOC_ENV, DEPLOYED_NODE_FLAGS } from '../helpers/deployed-settings.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { startTestServer } from '../helpers/server.js';

interface Probe {
  httpGet: { path: string; port: number | string };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

const readYaml = (file: string): any => parse(readFileSync(path.join('deploy', file), 'utf8'));

const dockerfile = readFileSync('deploy/Dockerfile', 'utf8');
/** Instructions of the final stage (after the last FROM), continuation lines joined. */
const finalStage = dockerfile
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
  .reduce<string[]>((stage, line) => (line.startsWith('FROM ') ? [line] : [...stage, line]), []);
const instruction = (name: string): string[] =>
  finalStage.filter((line) => line.startsWith(`${name} `)).map((line) => line.slice(name.length + 1).trim());

const deployment = readYaml('kubernetes/deployment.yaml');
const service = readYaml('kubernetes/service.yaml');
const hpa = readYaml('kubernetes/hpa.yaml');
const runtime = readYaml('kserve/serving-runtime.yaml');
const inferenceService = readYaml('kserve/inference-service.yaml');
const podContainer: Container = deployment.spec.template.spec.containers[0];
const kserveContainer: Container = runtime.spec.containers[0];

const ENTRYPOINT: string[] = JSON.parse(instruction('ENTRYPOINT')[0]);

/** What the real `serve` command makes of an argument list, without starting a server. */
async function parseServe(args: string[]): Promise<Record<string, unknown>> {
  const program = new Command('onnx-serve').exitOverride();
  registerServeCommand(program);
  let flags: Record<string, unknown> | undefined;
  program.commands
    .find((command) => command.name() === 'serve')!
    .exitOverride()
    .action((_models: string[], options: Record<string, unknown>) => {
      flags = options;
    });
  await program.parseAsync(args, { from: 'user' });
  return flags!;
}

/** Where the CLI's own arguments start in the image's command: after `node`, node's flags and the CLI file. */
const CLI_ARGS_START = 2 + DEPLOYED_NODE_FLAGS.length;

/** The image's command with `args` appended, as Docker and Kubernetes run it, minus `node <flags> dist/cli/index.js`. */
function cliArgs(args: string[] = []): string[] {
  assert.deepEqual(ENTRYPOINT.slice(0, CLI_ARGS_START), ['node', ...DEPLOYED_NODE_FLAGS, 'dist/cli/index.js']);
  return [...ENTRYPOINT.slice(CLI_ARGS_START), ...args];
}

describe('Dockerfile', () => {
  it('runs the built CLI: serve on 0.0.0.0 with the default HTTP and gRPC ports, which it exposes', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
    assert.equal(pkg.bin['onnx-serve'], ENTRYPOINT[CLI_ARGS_START - 1]);
    const flags = await parseServe(cliArgs());
    assert.equal(flags.host, '0.0.0.0');
    assert.equal(flags.port, DEFAULT_HTTP_PORT);
    assert.equal(flags.grpcPort, DEFAULT_GRPC_PORT);
    assert.deepEqual(instruction('EXPOSE'), [`${DEFAULT_HTTP_PORT} ${DEFAULT_GRPC_PORT}`]);
  });

  it('runs as the node image’s unprivileged user on Node 24 (the current LTS) slim, without the build stage’s tools', () => {
    assert.equal(finalStage[0], 'FROM node:24-slim');
    assert.deepEqual(instruction('USER'), ['node']);
    const runs = instruction('RUN');
    const buildsCache = (run: string) => run.startsWith('node dist/cli/index.js build-cache');
    assert.ok(
      runs.every((run) => run.includes('npm ci --omit=dev') || buildsCache(run)),
      'the final stage installs production dependencies only, and builds the int8 cache with the built CLI',
    );
    // Built into the folder the server then reads (the image sets it for both).
    assert.ok(runs.some(buildsCache), 'the image builds the int8 files its default repository asks for');
    assert.ok(instruction('ENV').includes('ONNX_SERVE_CACHE_DIR=/app/cache'), JSON.stringify(instruction('ENV')));
    // The malloc settings the tests' and benchmarks' child servers run with.
    for (const [name, value] of Object.entries(DEPLOYED_MALLOC_ENV)) {
      assert.ok(
        instruction('ENV').includes(`${name}=${value}`),
        `${name}=${value}: ${JSON.stringify(instruction('ENV'))}`,
      );
    }
    assert.match(dockerfile, /^FROM node:24-slim AS build$/m);
  });

  it('copies files that exist, the gRPC .proto and the npmrc that skips install scripts (the CUDA download) included', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1].split(' '));
    assert.ok(sources.includes('proto') && sources.includes('.npmrc') && sources.includes('models'), sources.join(' '));
    for (const source of sources) assert.ok(existsSync(source), `COPY ${source}: no such file`);
    assert.match(readFileSync('.npmrc', 'utf8'), /^ignore-scripts=true$/m);
  });

  it('checks health on the readiness path of the HTTP port', () => {
    const [healthcheck] = instruction('HEALTHCHECK');
    assert.ok(healthcheck.includes(`'http://127.0.0.1:${DEFAULT_HTTP_PORT}/v2/health/ready'`), healthcheck);
  });
});

describe('Kubernetes manifests', () => {
  it('the Deployment runs the image’s user, on the CLI’s default ports, with a whole-core CPU limit', async () => {
    assert.equal(deployment.spec.template.spec.securityContext.runAsUser, 1000, 'uid of the node image’s user');
    assert.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
    const ports = Object.fromEntries(podContainer.ports!.map((port) => [port.name, port.containerPort]));
    assert.deepEqual(ports, { http: DEFAULT_HTTP_PORT, grpc: DEFAULT_GRPC_PORT });
    const flags = await parseServe(cliArgs(podContainer.args));
    assert.equal(flags.port, DEFAULT_HTTP_PORT);
    assert.equal(flags.grpcPort, DEFAULT_GRPC_PORT);
    const { requests, limits } = podContainer.resources!;
    assert.equal(limits!.cpu, requests!.cpu, 'CPU limit equals the request, so inference threads are not throttled');
    assert.ok(Number.isInteger(Number(limits!.cpu)), `CPU limit ${limits!.cpu} is a whole number of cores`);
  });

  it('Prometheus scrapes the HTTP port', () => {
    const annotations = deployment.spec.template.metadata.annotations;
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(Number(annotations['prometheus.io/port']), DEFAULT_HTTP_PORT);
    assert.equal(annotations['prometheus.io/path'], '/metrics');
  });

  it('the Service routes 8000 and 8001 to the Deployment’s named ports', () => {
    const selector = deployment.spec.selector.matchLabels;
    assert.deepEqual(service.spec.selector, selector);
    assert.deepEqual(deployment.spec.template.metadata.labels, selector);
    const ports = service.spec.ports.map((port: { port: number; targetPort: string }) => [port.port, port.targetPort]);
    assert.deepEqual(ports, [
      [DEFAULT_HTTP_PORT, 'http'],
      [DEFAULT_GRPC_PORT, 'grpc'],
    ]);
  });

  it('the HorizontalPodAutoscaler scales that Deployment on CPU', () => {
    assert.deepEqual(hpa.spec.scaleTargetRef, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
    assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
  });
});

describe('KServe manifests', () => {
  it('the ServingRuntime declares onnx over v2 and grpc-v2 and serves KServe’s /mnt/models as a repository', async () => {
    assert.equal(runtime.kind, 'ServingRuntime');
    assert.deepEqual(runtime.spec.supportedModelFormats, [{ name: 'onnx', version: '1', autoSelect: true }]);
    assert.deepEqual(runtime.spec.protocolVersions, ['v2', 'grpc-v2']);
    assert.equal(kserveContainer.name, 'kserve-container');
    assert.equal(kserveContainer.image, podContainer.image);
    const flags = await parseServe(cliArgs(kserveContainer.args));
    assert.equal(flags.modelRepository, '/mnt/models');
    assert.equal(flags.modelName, '{{.Name}}');
    assert.deepEqual(
      kserveContainer.ports!.map((port) => port.containerPort),
      [flags.port],
    );
    assert.equal(Number(runtime.spec.annotations['prometheus.kserve.io/port']), flags.port);
  });

  it('the InferenceService uses that runtime for an onnx model over v2', () => {
    const model = inferenceService.spec.predictor.model;
    assert.equal(model.runtime, runtime.metadata.name);
    assert.equal(model.modelFormat.name, 'onnx');
    assert.equal(model.protocolVersion, 'v2');
  });

  it('every manifest is one YAML document without errors', () => {
    for (const file of [
      'kubernetes/deployment.yaml',
      'kubernetes/service.yaml',
      'kubernetes/hpa.yaml',
      'kserve/serving-runtime.yaml',
      'kserve/inference-service.yaml',
    ]) {
      const documents = parseAllDocuments(readFileSync(path.join('deploy', file), 'utf8'));
      assert.equal(Array.isArray(documents) ? documents.length : 0, 1, file);
      assert.deepEqual(Array.isArray(documents) ? documents[0].errors : [], [], file);
    }
  });
});

describe('every probe path answers on a running server', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ modelFiles: [path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx')] });
  });
  after(async () => server?.close());

  it('liveness, readiness, startup and the image HEALTHCHECK get 200 once the models are ready', async () => {
    const probes = [podContainer, kserveContainer].flatMap((container) =>
      [container.livenessProbe, container.readinessProbe, container.startupProbe].filter(
        (p): p is Probe => p !== undefined,
      ),
    );
    assert.equal(probes.length, 5);
    const healthcheck = /http:\/\/127\.0\.0\.1:\d+(\/[^']+)'/.exec(instruction('HEALTHCHECK')[0])![1];
    for (const probePath of [...probes.map((probe) => probe.httpGet.path), healthcheck]) {
      const response = await fetch(`${server.url}${probePath}`);
      assert.equal(response.status, 200, probePath);
    }
    const namedPorts = new Set(podContainer.ports!.map((port) => port.name));
    for (const probe of probes) {
      const { port } = probe.httpGet;
      assert.ok(port === DEFAULT_HTTP_PORT || (namedPorts.has(String(port)) && port === 'http'), `probe port ${port}`);
    }
  });
});
