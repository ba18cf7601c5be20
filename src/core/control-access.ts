/**
 * Who may call Triton's model repository extension, on every transport: HTTP passes the
 * `Authorization` header, gRPC the `authorization` metadata, and both get the same answer. The index
 * answers in every control mode (as Triton's does), behind the control token when the server has
 * one; load and unload need `--model-control-mode explicit` and the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ServeError, unavailable } from '../protocol/errors.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ControlMode, ModelControl } from './model-control.js';
import { repositoryIndex, type IndexEntry } from './repository-index.js';

export interface ControlAccessOptions {
  mode: ControlMode;
  /** Undefined only in mode none, or with --insecure-control. */
  token?: string;
  control?: ModelControl;
}

export class ControlAccess {
  readonly #options: ControlAccessOptions;
  readonly #expected: Buffer | undefined;

  constructor(options: ControlAccessOptions) {
    this.#options = options;
    this.#expected = options.token === undefined ? undefined : digest(options.token);
  }

  /**
   * Load and unload: only in explicit mode, as Triton (its wording, its status UNAVAILABLE), and with
   * the right bearer token. `what` names the call for the message.
   */
  control(authorization: string | undefined, what: string): ModelControl {
    const { mode, control } = this.#options;
    if (mode !== 'explicit' || control === undefined) {
      throw unavailable(
        `explicit model load / unload is not allowed if polling is enabled: onnx-serve runs with --model-control-mode ${mode}; start it with --model-control-mode explicit to use ${what}`,
      );
    }
    this.authorize(authorization);
    return control;
  }

  /** The repository index, in every mode; call authorize() first. */
  async index(registry: ModelRegistry, readyOnly: boolean): Promise<IndexEntry[]> {
    const control = this.#options.control;
    if (control !== undefined) return control.index(readyOnly);
    return repositoryIndex(registry, { readyOnly });
  }

  /** Throws UNAUTHENTICATED unless the bearer token matches, when the server has one. */
  authorize(authorization: string | undefined): void {
    if (this.#expected === undefined) return;
    const match = authorization === undefined ? null : /^Bearer (.+)$/i.exec(authorization.trim());
    if (match === null) {
      throw new ServeError(
        'UNAUTHENTICATED',
        'model control needs the header Authorization: Bearer <token> (gRPC: the metadata authorization), ' +
          'with the --control-token or ONNX_SERVE_CONTROL_TOKEN of the server',
      );
    }
    // Hashes have equal lengths whatever the token, which timingSafeEqual needs, and hide the token's length.
    if (!timingSafeEqual(digest(match[1]), this.#expected)) {
      throw new ServeError('UNAUTHENTICATED', 'the bearer token does not match the server control token');
    }
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
