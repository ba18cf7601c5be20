import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * How many cores inference may use. ONNX Runtime sizes its thread pool from the host's logical
 * cores and ignores container CPU limits, so we decide here: physical cores (hyperthreads share
 * execution units and slow each other down on dense math), never more than the cgroup quota.
 */
export interface CpuBudget {
  logical: number;
  physical: number;
  /** CPU limit of the container (cgroup quota / period), rounded up; undefined when unlimited. */
  cgroupLimit?: number;
  /** The number of cores inference should plan for. */
  usable: number;
}

export function cpuBudget(): CpuBudget {
  const logical = os.availableParallelism();
  const physical = Math.min(physicalCores() ?? logical, logical);
  const cgroupLimit = cgroupCpuLimit();
  const usable = Math.max(1, Math.min(physical, cgroupLimit ?? Infinity));
  return cgroupLimit === undefined ? { logical, physical, usable } : { logical, physical, cgroupLimit, usable };
}

/** Distinct (physical id, core id) pairs in /proc/cpuinfo; undefined where that file says nothing. */
function physicalCores(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
  const cores = new Set<string>();
  for (const block of text.split(/\n\s*\n/)) {
    const physicalId = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
    const coreId = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
    if (physicalId !== undefined && coreId !== undefined) cores.add(`${physicalId}:${coreId}`);
  }
  return cores.size > 0 ? cores.size : undefined;
}

/** cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`. */
function cgroupCpuLimit(): number | undefined {
  const v2 = readText('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.trim().split(/\s+/);
    return quotaToCores(quota, period);
  }
  const quota =
    readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') ?? readText('/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us');
  const period =
    readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us') ?? readText('/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us');
  return quotaToCores(quota?.trim(), period?.trim());
}

function quotaToCores(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period);
  if (!(q > 0) || !(p > 0)) return undefined;
  return Math.max(1, Math.ceil(q / p));
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
