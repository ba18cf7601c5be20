/**
 * The settings the server is deployed with: `npm start` (scripts/start.sh) and the container image
 * (deploy/Dockerfile) set them, docs/deploy.md and docs/configuration.md say why. Child servers in
 * tests and benchmarks start with them, so that what they measure is what runs.
 */
export const DEPLOYED_MALLOC_ENV = {
  // Freed blocks of 128 KiB and more go back to the system at once (memory stays near its ready size).
  MALLOC_MMAP_THRESHOLD_: '131072',
  // Those blocks, mapped afresh for each run's large activations, get transparent huge pages (glibc 2.35+).
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
} as const;

/**
 * Node's own flags. `--single-threaded-gc`: V8 collects garbage on the thread that made it, without
 * its helper threads. While the models' threads keep every core busy, a collection that hands work to
 * helpers waits for them to get a core: the main thread's scavenges and mark-compacts stretched to
 * 5-17 ms and the health checks with them (bench/RESULTS.md, issue 16). V8 allows it on the command
 * line only (not in NODE_OPTIONS, and setting it at run time crashes V8).
 */
export const DEPLOYED_NODE_FLAGS = ['--single-threaded-gc'] as const;

/** node's arguments for the CLI's `serve` run from source (tsx) with node's flags as deployed, then `args`. */
export function serveFromSource(args: readonly string[]): string[] {
  return [...DEPLOYED_NODE_FLAGS, '--import', 'tsx', 'src/cli/index.ts', 'serve', ...args];
}
