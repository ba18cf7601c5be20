/**
 * The glibc malloc settings the server is deployed with: `npm start` (scripts/start.sh) and the
 * container image (deploy/Dockerfile) set them, docs/deploy.md says why. Child servers in tests and
 * benchmarks start with them, so that what they measure is what runs.
 */
export const DEPLOYED_MALLOC_ENV = {
  // Freed blocks of 128 KiB and more go back to the system at once (memory stays near its ready size).
  MALLOC_MMAP_THRESHOLD_: '131072',
  // Those blocks, mapped afresh for each run's large activations, get transparent huge pages (glibc 2.35+).
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
} as const;
