/**
 * One worker thread of the server-wide pool, hosting the ONNX Runtime sessions of any number of
 * model instances. onnxruntime-node's `run()` executes synchronously on the calling JS thread, so
 * sessions live here and the main thread only moves tensors. The thread runs one session at a time;
 * runs wait in a line that is fair across models (fair-queue.ts), the main thread's queues bound how
 * many each model has in flight (one batch per instance).
 */
import { parentPort, workerData } from 'node:worker_threads';
// First: decides how onnxruntime-common stores FP16 data, before anything creates a tensor.
import './float16-storage.js';
import * as ort from 'onnxruntime-node';
import { DATATYPES, datatypeOfOrtType, type NamedTensor, type Tensor, type TensorData } from '../protocol/datatypes.js';
import { freeNow, isPoolSize } from './buffer-pool.js';
import { createSessionWithFallback } from './execution-providers.js';
import { FairQueue } from './fair-queue.js';
import { readSignature } from './signature.js';
import { DEFAULT_WARMUP_RUNS, warmupInputs } from './warmup.js';
import type { InferenceWorkerData, WarmupReport, WorkerCommand, WorkerEvent, WorkerSetup } from './worker-messages.js';
import { sessionOutputsFor, withReductions } from './output-reductions.js';
import { lowerThisThreadPriority } from './thread-priority.js';

type RunCommand = Extract<WorkerCommand, { type: 'run' }>;

interface HostedSession {
  session: ort.InferenceSession;
  /** The model version it is an instance of: the line takes turns between these. */
  model: string;
}

const port = parentPort!;
const sessions = new Map<number, HostedSession>();
/** Runs received and not started. */
const line = new FairQueue<RunCommand>();
/** A take is scheduled or a run is under way: the next take follows it. */
let taking = false;

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

async function runSession(
  session: ort.InferenceSession,
  inputs: NamedTensor[],
  names?: string[],
): Promise<NamedTensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const tensor of inputs) feeds[tensor.name] = toOrtTensor(tensor);
  if (names === undefined) {
    return Object.entries(await session.run(feeds)).map(([name, value]) => fromOrtTensor(name, value));
  }
  // Reduced outputs (output-reductions.ts) are computed here from the full ones, which stay in this thread.
  const results = new Map(
    Object.entries(await session.run(feeds, sessionOutputsFor(names, session.outputNames))).map(([name, value]) => [
      name,
      fromOrtTensor(name, value),
    ]),
  );
  const outputs = withReductions(names, results);
  const sent = new Set(outputs.map(bufferOf));
  freeNow([...results.values()].map(bufferOf).filter((buffer) => !sent.has(buffer)));
  return outputs;
}

function bufferOf(tensor: NamedTensor): ArrayBuffer | undefined {
  const buffer = ArrayBuffer.isView(tensor.data) ? tensor.data.buffer : undefined;
  return buffer instanceof ArrayBuffer ? buffer : undefined;
}

async function warmup(session: ort.InferenceSession, setup: WorkerSetup): Promise<WarmupReport> {
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
    for (let i = 0; i < runs; i++) await runSession(session, tensors);
  } catch (error) {
    const message = (error as Error).message;
    // Only warmup data that the config supplies must run; synthetic data can be wrong for a valid model.
    if (supplied) throw new Error(`warmup with the data in config.yaml failed: ${message}`);
    return { runs, ms: performance.now() - started, warning: message, shapes };
  }
  return { runs, ms: performance.now() - started, shapes };
}

async function load(id: number, setup: WorkerSetup): Promise<void> {
  let session: ort.InferenceSession | undefined;
  try {
    const started = performance.now();
    const created = await createSessionWithFallback(setup.modelPath, setup.settings, setup.label);
    session = created.session;
    const loadMs = performance.now() - started;
    const report = await warmup(session, setup);
    sessions.set(id, { session, model: setup.label });
    send({
      type: 'ready',
      session: id,
      provider: created.provider,
      skippedProviders: created.skipped,
      signature: readSignature(session),
      loadMs,
      warmup: report,
    });
  } catch (error) {
    await session?.release().catch(() => undefined);
    send({ type: 'failed', session: id, error: (error as Error).message });
  }
}

/**
 * Queues a run. The take waits for the check phase (setImmediate): every message that arrived in
 * this poll phase, or during the run before, is in the line by then, so the take chooses among all
 * of them. With one run waiting that costs one turn of this thread's event loop, a few µs.
 */
function enqueue(command: RunCommand): void {
  const hosted = sessions.get(command.session);
  if (hosted === undefined) {
    notLoaded(command);
    return;
  }
  line.push(hosted.model, command);
  if (!taking) scheduleTake();
}

function scheduleTake(): void {
  taking = true;
  setImmediate(takeNext);
}

function takeNext(): void {
  const command = line.shift();
  if (command === undefined) {
    taking = false;
    return;
  }
  // After the run, the next take is again one turn later: messages that came in during the
  // synchronous run are delivered (poll phase) before it (check phase).
  void run(command).finally(scheduleTake);
}

function notLoaded(command: RunCommand): void {
  send({
    type: 'error',
    id: command.id,
    error: `session ${command.session} is not loaded in this worker`,
    recycled: [],
  });
}

async function run(command: RunCommand): Promise<void> {
  const hosted = sessions.get(command.session);
  if (hosted === undefined) {
    notLoaded(command);
    return;
  }
  const started = performance.now();
  try {
    const outputs = await runSession(hosted.session, command.inputs, command.outputs);
    const transfer = new Set(
      outputs.flatMap((o) => (ArrayBuffer.isView(o.data) ? [o.data.buffer as ArrayBuffer] : [])),
    );
    const recycled = recyclable(command.inputs, transfer);
    for (const buffer of recycled) transfer.add(buffer);
    send({ type: 'result', id: command.id, outputs, computeMs: performance.now() - started, recycled }, [...transfer]);
  } catch (error) {
    // An exception here (bad feeds, a kernel's error) fails this request only; the session serves on.
    const recycled = recyclable(command.inputs, new Set());
    send({ type: 'error', id: command.id, error: (error as Error).message, recycled }, recycled);
  }
  // Nothing reads the inputs again.
  freeNow(command.inputs.map(bufferOf));
}

/**
 * The inputs' buffers of a finished run, to go back to the main thread's BufferPool (only its sizes,
 * and never one an output lives in): session.run has returned, so nothing here reads them again.
 */
function recyclable(inputs: NamedTensor[], outputBuffers: ReadonlySet<ArrayBuffer>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const input of inputs) {
    const buffer = bufferOf(input);
    if (buffer !== undefined && isPoolSize(buffer.byteLength) && !outputBuffers.has(buffer)) {
      buffers.add(buffer);
    }
  }
  return [...buffers];
}

/** The main thread sends `release` only once the session has nothing in flight. */
async function release(id: number): Promise<void> {
  const hosted = sessions.get(id);
  sessions.delete(id);
  if (hosted !== undefined && ![...sessions.values()].some((other) => other.model === hosted.model)) {
    line.forget(hosted.model);
  }
  await hosted?.session.release().catch(() => undefined);
  send({ type: 'released', session: id });
}

async function prime(model: Uint8Array): Promise<void> {
  try {
    const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    await session.run({ x: new ort.Tensor('float32', new Float32Array(1), [1]) });
    await session.release();
    send({ type: 'primed' });
  } catch (error) {
    send({ type: 'primed', error: (error as Error).message });
  }
}

// Before any session: ONNX Runtime's threads, started with a session, take this thread's priority.
const priorityFailure = lowerThisThreadPriority((workerData as InferenceWorkerData).nice);
// onnxruntime-node's native library is loaded: the thread's own memory is in place before any session.
send(priorityFailure === undefined ? { type: 'started' } : { type: 'started', priorityFailure });

port.on('message', (command: WorkerCommand) => {
  switch (command.type) {
    case 'run':
      enqueue(command);
      break;
    case 'load':
      void load(command.session, command.setup);
      break;
    case 'release':
      void release(command.session);
      break;
    case 'prime':
      void prime(command.model);
      break;
    case 'close':
      void Promise.allSettled([...sessions.values()].map((hosted) => hosted.session.release())).finally(() =>
        port.close(),
      );
      break;
  }
});
