/**
 * One worker thread, one ONNX Runtime session. onnxruntime-node's `run()` executes synchronously
 * on the calling JS thread, so sessions live here and the main thread only moves tensors.
 */
import { parentPort, workerData } from 'node:worker_threads';
// First: decides how onnxruntime-common stores FP16 data, before anything creates a tensor.
import './float16-storage.js';
import * as ort from 'onnxruntime-node';
import { DATATYPES, datatypeOfOrtType, type NamedTensor, type Tensor, type TensorData } from '../protocol/datatypes.js';
import { createSessionWithFallback } from './execution-providers.js';
import { readSignature } from './signature.js';
import { DEFAULT_WARMUP_RUNS, warmupInputs } from './warmup.js';
import type { WarmupReport, WorkerCommand, WorkerEvent, WorkerSetup } from './worker-messages.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;

function send(event: WorkerEvent, transfer: ArrayBuffer[] = []): void {
  port.postMessage(event, transfer);
}

function toOrtTensor(tensor: Tensor): ort.Tensor {
  const type = DATATYPES[tensor.datatype].ort;
  return new ort.Tensor(type, tensor.data as ort.Tensor.DataType, tensor.shape);
}

function fromOrtTensor(name: string, value: ort.Tensor): NamedTensor {
  const datatype = datatypeOfOrtType(value.type);
  if (datatype === undefined) throw new Error(`output ${name} has type ${value.type}, which the protocol cannot carry`);
  return { name, datatype, shape: [...value.dims], data: value.data as TensorData };
}

async function run(session: ort.InferenceSession, inputs: NamedTensor[], names?: string[]): Promise<NamedTensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const tensor of inputs) feeds[tensor.name] = toOrtTensor(tensor);
  const results = names === undefined ? await session.run(feeds) : await session.run(feeds, names);
  return Object.entries(results).map(([name, value]) => fromOrtTensor(name, value));
}

async function warmup(session: ort.InferenceSession): Promise<WarmupReport> {
  const runs = setup.warmup.runs ?? DEFAULT_WARMUP_RUNS;
  const signature = readSignature(session);
  const shapes: Record<string, number[]> = {};
  if (runs === 0) return { runs: 0, ms: 0, shapes };
  let supplied = false;
  const started = performance.now();
  try {
    const prepared = warmupInputs(signature, setup.warmup);
    supplied = prepared.supplied;
    const tensors = prepared.tensors.map((t, i) => ({ ...t, name: signature.inputs[i].name }));
    for (const t of tensors) shapes[t.name] = t.shape;
    for (let i = 0; i < runs; i++) await run(session, tensors);
  } catch (error) {
    const message = (error as Error).message;
    // Only warmup data that the config supplies must run; synthetic data can be wrong for a valid model.
    if (supplied) throw new Error(`warmup with the data in config.yaml failed: ${message}`);
    return { runs, ms: performance.now() - started, warning: message, shapes };
  }
  return { runs, ms: performance.now() - started, shapes };
}

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    const started = performance.now();
    const created = await createSessionWithFallback(setup.modelPath, setup.settings, setup.label);
    session = created.session;
    const loadMs = performance.now() - started;
    const report = await warmup(session);
    send({
      type: 'ready',
      provider: created.provider,
      skippedProviders: created.skipped,
      signature: readSignature(session),
      loadMs,
      warmup: report,
    });
  } catch (error) {
    send({ type: 'failed', error: (error as Error).message });
    port.close();
    return;
  }

  port.on('message', (command: WorkerCommand) => {
    if (command.type === 'close') {
      void session.release().finally(() => port.close());
      return;
    }
    const started = performance.now();
    run(session, command.inputs, command.outputs).then(
      (outputs) => {
        const transfer = [
          ...new Set(outputs.flatMap((o) => (ArrayBuffer.isView(o.data) ? [o.data.buffer as ArrayBuffer] : []))),
        ];
        send({ type: 'result', id: command.id, outputs, computeMs: performance.now() - started }, transfer);
      },
      (error: unknown) => send({ type: 'error', id: command.id, error: (error as Error).message }),
    );
  });
}

void main();
