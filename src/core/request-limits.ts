import type { NamedTensor } from '../protocol/datatypes.js';
import { checkBytesElement } from '../protocol/bytes-elements.js';
import { payloadTooLarge } from '../protocol/errors.js';
import type { InferenceRequestHeader } from '../protocol/json-codec.js';

/** Bounds on what one request may ask of the server, beyond the body size. */
export interface RequestLimits {
  /** Bytes of request line plus headers (Node's maxHeaderSize). */
  maxHeaderSize: number;
  /** Input tensors in one request. */
  maxTensors: number;
  /** Elements in one tensor (the product of its shape). */
  maxTensorElements: number;
  /** UTF-8 bytes in one BYTES element. */
  maxBytesElementSize: number;
  /** Output elements one JSON answer may print; binary outputs are not counted. */
  maxJsonOutputElements: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = {
  maxHeaderSize: 16 * 1024,
  maxTensors: 64,
  maxTensorElements: 64 * 1024 * 1024,
  maxBytesElementSize: 4 * 1024 * 1024,
  // About 100-200 MB of JSON: 16,384 x 16,384 floats blocked the main thread 16.6 s and then failed
  // with "Invalid string length"; binary outputs of any size cost a copy at most.
  maxJsonOutputElements: 16 * 1024 * 1024,
};

/**
 * Checked on the request header, before JSON data or gRPC contents are decoded. Binary-extension and
 * raw tensors are views into the body, which the body limit already bounds, so they are checked
 * after the body is split into them but before any tensor is built from it.
 */
export function checkHeaderLimits(header: InferenceRequestHeader, limits: RequestLimits): void {
  if (header.inputs.length > limits.maxTensors) {
    throw payloadTooLarge(
      `the request has ${header.inputs.length} inputs; the limit is ${limits.maxTensors} (--max-tensors)`,
    );
  }
  header.inputs.forEach((input, index) => {
    const elements = input.shape.reduce((product, dim) => product * Number(dim), 1);
    if (elements > limits.maxTensorElements) {
      throw payloadTooLarge(
        `inputs[${index}] (${input.name}) has shape [${input.shape.join(', ')}], ${elements} elements; ` +
          `the limit is ${limits.maxTensorElements} per tensor (--max-tensor-elements)`,
      );
    }
  });
}

/**
 * Checked on the outputs before a JSON answer is encoded: printing hundreds of millions of numbers
 * takes seconds and can pass V8's string limit, while binary costs a copy. Returns the element count.
 */
export function checkJsonAnswerSize(outputs: NamedTensor[], limits: RequestLimits): number {
  const elements = outputs.reduce((sum, output) => sum + output.shape.reduce((product, dim) => product * dim, 1), 0);
  if (elements > limits.maxJsonOutputElements) {
    throw payloadTooLarge(
      `the answer holds ${elements} output elements, over the limit of ${limits.maxJsonOutputElements} for JSON ` +
        `(--max-json-output-elements); ask for binary outputs ("parameters": {"binary_data_output": true}, ` +
        `see docs/protocol.md) or for fewer outputs`,
    );
  }
  return elements;
}

/**
 * Checked once BYTES tensors are decoded, on every transport: their elements are variable-sized, and
 * each must reach the session exactly as it came (no NUL byte, nothing without a UTF-8 form).
 */
export function checkBytesElements(inputs: NamedTensor[], limits: RequestLimits): NamedTensor[] {
  inputs.forEach((tensor, index) => {
    if (tensor.datatype !== 'BYTES' || !Array.isArray(tensor.data)) return;
    (tensor.data as string[]).forEach((element, position) => {
      checkBytesElement(element, `inputs[${index}] (${tensor.name})`, position);
      const size = Buffer.byteLength(element, 'utf8');
      if (size > limits.maxBytesElementSize) {
        throw payloadTooLarge(
          `inputs[${index}] (${tensor.name}) element ${position} is ${size} bytes; ` +
            `the limit is ${limits.maxBytesElementSize} per BYTES element (--max-bytes-element-size)`,
        );
      }
    });
  });
  return inputs;
}
