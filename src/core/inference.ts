import type { Datatype, NamedTensor } from '../protocol/datatypes.js';
import { invalidArgument, toServeError } from '../protocol/errors.js';
import type { InferenceRequestHeader, InferenceResponse } from '../protocol/json-codec.js';
import {
  validateInputAgainstMetadata,
  validateInputBounds,
  validateInputNames,
  validateRequestedOutputNames,
} from '../protocol/shape.js';
import {
  failureReason,
  markPublished,
  publishInferenceFinished,
  publishInferenceStarted,
  type InferenceFinished,
} from '../observability/inference-events.js';
import type { ReadyModelVersion } from '../repository/model-version.js';
import { parseReducedOutputName } from '../runtime/output-reductions.js';
import { protocolShape, type TensorSpec } from '../runtime/signature.js';
import type { CancelSignal } from '../scheduler/model-queue.js';
import { checkBatchSize } from './batch-size.js';
import { classify, requestedClassCount } from './classification.js';
import { checkBytesElements, checkHeaderLimits, DEFAULT_REQUEST_LIMITS, type RequestLimits } from './request-limits.js';

export type ReadyModel = ReadyModelVersion;

/** Where the time of one request went, for metrics and logs. */
export interface InferenceTimings {
  queueMs: number;
  computeMs: number;
  /** Items the request carried (its first dimension), or 1 for a model without a batch dimension. */
  items: number;
  /** Items in the batch the request ran in (its own and the others'); equals items when it ran alone. */
  batchSize: number;
}

/** Who asked, and since when: for logs and the end-to-end duration. Every field optional. */
export interface InferenceContext {
  requestId?: string;
  /** performance.now() when the request reached the server (default: when runInference was called). */
  receivedAt?: number;
  /** Aborted when the client goes away (connection closed, call cancelled): takes the request out of the queue. */
  signal?: CancelSignal;
  /** Tensor and BYTES limits on what the request may ask (default DEFAULT_REQUEST_LIMITS). */
  limits?: RequestLimits;
  /**
   * The server's own callers (image pipelines): outputs reduced in the worker that ran the model,
   * named as output-reductions.ts says, answered instead of the header's outputs. No client request
   * reaches this (its output names are checked against the signature).
   */
  reducedOutputs?: string[];
  /**
   * Answer first, count after: a successful request's finished event (metrics, statistics, the
   * slow-inference log) is not published here but handed back as `publishFinished`, which the caller
   * calls once it has handed the answer to its connection, in the same tick (the HTTP route, right
   * after `reply.send`). The subscribers' work then no longer stands between a result and its answer.
   * Failures are published here either way.
   */
  answerFirst?: boolean;
}

export interface InferenceResult {
  response: InferenceResponse;
  timings: InferenceTimings;
  /** With `answerFirst`: publishes the request's finished event; the caller must call it once. */
  publishFinished?: () => void;
}

/**
 * Checks a request against the request limits and the model's signature, runs it on the model's
 * workers and answers the outputs in the order the request asked for them (all outputs, in model
 * order, if it named none). The header is checked before `decodeInputs` runs, so a wrong shape is
 * reported as such rather than as a data-length mismatch, and no time goes into decoding a request
 * that cannot run. Transport-neutral: HTTP /infer and /predict, gRPC, the in-process API and the
 * bench all go through it, so the limits hold on every one of them.
 */
export async function runInference(
  model: ReadyModel,
  header: InferenceRequestHeader,
  decodeInputs: () => NamedTensor[],
  context: InferenceContext = {},
): Promise<InferenceResult> {
  const receivedAt = context.receivedAt ?? performance.now();
  const limits = context.limits ?? DEFAULT_REQUEST_LIMITS;
  // Refused before it counts as an inference: the request asks more than any model may be given.
  checkHeaderLimits(header, limits);
  let started = false;
  let items = 1;
  try {
    const decodeWithinLimits = () => checkBytesElements(decodeInputs(), limits);
    const result = await validateAndRun(model, header, decodeWithinLimits, context, (count) => {
      started = true;
      items = count;
      publishInferenceStarted({ model });
    });
    const { timings } = result;
    const finished: InferenceFinished = {
      model,
      requestId: context.requestId,
      ok: true,
      totalMs: performance.now() - receivedAt,
      queueMs: timings.queueMs,
      computeMs: timings.computeMs,
      items: timings.items,
      batchSize: timings.batchSize,
      started: true,
    };
    if (context.answerFirst !== true) {
      publishInferenceFinished(finished);
      return result;
    }
    let published = false;
    result.publishFinished = () => {
      if (published) return;
      published = true;
      publishInferenceFinished(finished);
    };
    return result;
  } catch (error) {
    const served = toServeError(error);
    publishInferenceFinished({
      model,
      requestId: context.requestId,
      ok: false,
      reason: failureReason(served.code),
      error: served.message,
      totalMs: performance.now() - receivedAt,
      items,
      batchSize: items,
      started,
    });
    markPublished(error);
    throw error;
  }
}

async function validateAndRun(
  model: ReadyModel,
  header: InferenceRequestHeader,
  decodeInputs: () => NamedTensor[],
  { signal, reducedOutputs }: InferenceContext,
  onDecoded: (items: number) => void,
): Promise<InferenceResult> {
  const { signature } = model.loaded;
  const label = model.name;
  const timeout = model.queue.effectiveTimeout(requestedTimeout(header));
  validateInputNames(header.inputs, signature.inputs, label);
  header.inputs.forEach((input, index) => {
    const spec = signature.inputs.find((s) => s.name === input.name)!;
    validateInputAgainstMetadata(
      input,
      { name: spec.name, datatype: feedableDatatype(spec, label), shape: protocolShape(spec.dims) },
      label,
      index,
    );
    // config.yaml's bounds on dimensions the model leaves open: memory a request may take, checked before decoding.
    const bound = model.inputBounds.get(input.name);
    if (bound !== undefined) validateInputBounds(input, bound, label, index);
  });
  validateRequestedOutputNames(header.outputs, signature.outputs, label);
  checkBatchSize(model, header);
  const classCounts = new Map<string, number>();
  header.outputs?.forEach((output, index) => {
    const count = requestedClassCount(output, index);
    if (count !== undefined) classCounts.set(output.name, count);
  });

  for (const name of reducedOutputs ?? []) {
    const output = parseReducedOutputName(name)?.output;
    if (output === undefined || !signature.outputs.some((spec) => spec.name === output)) {
      throw new Error(`${name} names no reduction of an output of model ${label}`);
    }
  }
  const wanted = reducedOutputs ?? header.outputs?.map((output) => output.name);
  const inputs = decodeInputs();
  const items = inputs[0]?.shape[0] ?? 1;
  onDecoded(items);
  const { outputs, queueMs, computeMs, batchSize } = await model.queue.run(inputs, wanted, { timeout, signal });
  const byName = new Map(outputs.map((output) => [output.name, output]));
  const order = wanted ?? signature.outputs.map((spec) => spec.name);
  const response: InferenceResponse = {
    model_name: model.name,
    model_version: String(model.version),
    outputs: order
      .map((name) => byName.get(name))
      .filter((o): o is NamedTensor => o !== undefined)
      .map((output) => {
        const count = classCounts.get(output.name);
        return count === undefined ? output : classify(model, output, count, model.queue.maxBatchSize > 0);
      }),
  };
  if (header.id !== undefined) response.id = header.id;
  // The server's side of the latency, for clients and `onnx-serve bench` to split queue from compute.
  response.parameters = { queue_ms: round3(queueMs), compute_ms: round3(computeMs), batch_size: batchSize };
  return { response, timings: { queueMs, computeMs, items, batchSize } };
}

/** The protocol datatype of a model input, or INVALID_ARGUMENT for an ONNX type no request can carry. */
export function feedableDatatype(spec: TensorSpec, model: string): Datatype {
  if (spec.datatype === null) {
    throw invalidArgument(
      `input ${spec.name} of model ${model} has type ${spec.ortType}, which onnx-serve cannot feed`,
    );
  }
  return spec.datatype;
}

/** Triton's request parameter `timeout`: µs the request may wait in the queue (0 or absent: no timeout of its own). */
function requestedTimeout(header: InferenceRequestHeader): number | undefined {
  const parameters = header.parameters;
  if (parameters === undefined || !Object.prototype.hasOwnProperty.call(parameters, 'timeout')) return undefined;
  const value: unknown = parameters.timeout;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw invalidArgument(
    `parameters.timeout must be a non-negative integer of microseconds (Triton's request timeout), got ${JSON.stringify(typeof value === 'bigint' ? String(value) : value)}`,
  );
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
