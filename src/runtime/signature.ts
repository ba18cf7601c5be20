import type { InferenceSession } from 'onnxruntime-node';
import { datatypeOfOrtType, type Datatype } from '../protocol/datatypes.js';

/** One input or output as the session declares it. */
export interface TensorSpec {
  name: string;
  /** Protocol datatype; null for types the protocol or onnxruntime-node cannot carry (maps, sequences, bf16). */
  datatype: Datatype | null;
  /** onnxruntime's own type name, kept for messages about unsupported types. */
  ortType: string;
  /** Dimensions as onnxruntime reports them: a number, or the symbolic name of a dynamic dimension. */
  dims: Array<number | string>;
}

/** A model's inputs and outputs: the one source of truth for validation, metadata and warmup. */
export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export function readSignature(session: InferenceSession): ModelSignature {
  return {
    inputs: session.inputMetadata.map(toSpec),
    outputs: session.outputMetadata.map(toSpec),
  };
}

function toSpec(meta: InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) return { name: meta.name, datatype: null, ortType: 'non-tensor', dims: [] };
  return {
    name: meta.name,
    datatype: datatypeOfOrtType(meta.type) ?? null,
    ortType: meta.type,
    dims: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))),
  };
}

/** The protocol's view of a shape: -1 for every dynamic dimension. */
export function protocolShape(dims: ReadonlyArray<number | string>): number[] {
  return dims.map((d) => (typeof d === 'number' ? d : -1));
}
