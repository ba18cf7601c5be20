// Development entry of the JSON codec worker, used when onnx-serve runs from its TypeScript sources
// (tests, `node --import tsx`): Node 20 does not apply the parent's tsx loader to a worker's entry file.
import { register } from 'tsx/esm/api';

register();
await import('./json-codec-worker.ts');
