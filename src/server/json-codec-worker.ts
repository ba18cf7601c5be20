/**
 * The JSON codec thread: parses a large inference request and decodes its tensors, or prints a large
 * answer, with the very functions the main thread uses for small ones (src/protocol/json-*.ts), so
 * results and error messages are the same byte for byte. Typed arrays and answer bytes go back by
 * transfer. Messages: src/server/json-codec-messages.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkHeaderLimits } from '../core/request-limits.js';
import type { NamedTensor } from '../protocol/datatypes.js';
import { ServeError } from '../protocol/errors.js';
import { parseInferenceRequest } from '../protocol/json-codec.js';
import { decodeJsonInputs } from '../protocol/json-decode.js';
import { encodeJsonResponse } from '../protocol/json-encode.js';
import { lowerThisThreadPriority } from '../runtime/thread-priority.js';
import { ownedBuffers, type CodecFailure, type CodecReply, type CodecTask } from './json-codec-messages.js';

const port = parentPort!;
// A failure needs no word of its own: the inference workers try the same and the server logs theirs.
lowerThisThreadPriority((workerData as { nice: number }).nice);
const UTF8 = new TextEncoder();

function failure(error: unknown): CodecFailure {
  // Anything but a ServeError is what the main thread's error handler would call INTERNAL.
  return error instanceof ServeError
    ? { code: error.code, message: error.message }
    : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

port.on('message', (task: CodecTask) => {
  let reply: CodecReply;
  let transfer: ArrayBuffer[] = [];
  try {
    if (task.kind === 'decode') {
      // Header errors (malformed JSON, a missing field) are the request's answer, as on the main thread.
      const header = parseInferenceRequest(task.body);
      let inputs: NamedTensor[] | undefined;
      let decodeError: CodecFailure | undefined;
      try {
        // The limits the main thread checks again before decoding: over them, nothing is allocated here.
        checkHeaderLimits(header, task.limits);
        inputs = decodeJsonInputs(header);
        transfer = ownedBuffers(inputs.map((input) => input.data));
      } catch (error) {
        // Thrown only when the main thread asks for the inputs: its checks against the model come first.
        inputs = undefined;
        decodeError = failure(error);
      }
      // The JSON data stays here: the main thread needs the header's names, shapes and parameters only.
      header.inputs = header.inputs.map(({ data: _data, ...rest }) => rest);
      reply = { id: task.id, ok: true, header, ...(inputs === undefined ? { decodeError: decodeError! } : { inputs }) };
    } else {
      const bytes = UTF8.encode(encodeJsonResponse(task.response));
      transfer = [bytes.buffer as ArrayBuffer];
      reply = { id: task.id, ok: true, bytes };
    }
  } catch (error) {
    reply = { id: task.id, ok: false, error: failure(error) };
    transfer = [];
  }
  port.postMessage(reply, transfer);
});
