// autocannon ships no types and @types/autocannon is not installed: the part the benchmarks use.
declare module 'autocannon' {
  interface Options {
    url: string;
    method?: string;
    body?: Buffer | string;
    headers?: Record<string, string>;
    connections?: number;
    duration?: number;
  }
  interface Histogram {
    average: number;
    p50: number;
    p99: number;
  }
  interface Result {
    requests: Histogram;
    latency: Histogram;
    errors: number;
    non2xx: number;
  }
  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
