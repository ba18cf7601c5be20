/** What the main thread and a JSON codec worker (json-codec-worker.ts) say to each other. */
import type { RequestLimits } from '../core/request-limits.js';
import type { NamedTensor, TensorData } from '../protocol/datatypes.js';
import type { ErrorCode } from '../protocol/errors.js';
import type { InferenceRequestHeader, InferenceResponse } from '../protocol/json-codec.js';

export type CodecTask =
  | { id: number; kind: 'decode'; body: Uint8Array; limits: RequestLimits }
  | { id: number; kind: 'encode'; response: InferenceResponse };

/** A ServeError as it crosses threads. */
export interface CodecFailure {
  code: ErrorCode;
  message: string;
}

export type CodecReply =
  | {
      id: number;
      ok: true;
      /** Without the inputs' JSON data. */
      header?: InferenceRequestHeader;
      /** The decoded inputs; absent when decoding failed (decodeError says why). */
      inputs?: NamedTensor[];
      decodeError?: CodecFailure;
      /** The encoded answer (UTF-8 JSON). */
      bytes?: Uint8Array;
    }
  | { id: number; ok: false; error: CodecFailure };

/** The ArrayBuffers that typed arrays own whole: those can be transferred instead of copied. */
export function ownedBuffers(data: ReadonlyArray<TensorData>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const tensor of data) {
    if (ArrayBuffer.isView(tensor) && tensor.buffer instanceof ArrayBuffer && tensor.byteOffset === 0) {
      if (tensor.byteLength === tensor.buffer.byteLength) buffers.add(tensor.buffer);
    }
  }
  return [...buffers];
}
