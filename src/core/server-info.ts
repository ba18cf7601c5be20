import { readFileSync } from 'node:fs';

/** What `GET /v2` and gRPC `ServerMetadata` answer. */
export interface ServerInfo {
  name: string;
  version: string;
  extensions: string[];
}

export function serverInfo(modelControl = false): ServerInfo {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const extensions = [
    'binary_tensor_data',
    'statistics',
    'model_configuration',
    'classification',
    'predict',
    ...(modelControl ? ['model_repository'] : []),
  ];
  return { name: 'onnx-serve', version: pkg.version, extensions };
}
