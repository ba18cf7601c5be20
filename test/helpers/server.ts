import { pino } from 'pino';
import { startServer, type RunningServer, type ServeOptions } from '../../src/server/start.js';

/** The real server on a free loopback port, quiet unless ONNX_SERVE_TEST_LOG is set. */
export async function startTestServer(options: ServeOptions = {}): Promise<RunningServer> {
  return startServer({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: process.env.ONNX_SERVE_TEST_LOG ?? 'silent' }),
    ...options,
  });
}

export async function getJson(url: string): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json(), headers: response.headers };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, headers: response.headers };
}
