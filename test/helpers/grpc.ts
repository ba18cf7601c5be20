import { status, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';

/** Rejects with a gRPC error of this code and exactly this message. */
export async function assertGrpcError(call: Promise<unknown>, code: status, message: string): Promise<void> {
  await assert.rejects(call, (error: ServiceError) => {
    assert.equal(error.details, message);
    assert.equal(status[error.code], status[code]);
    return true;
  });
}
