/**
 * Whether V8 collects garbage on the collecting thread alone (`node --single-threaded-gc`, which
 * `npm start` and the container image pass). With its default helper threads, a collection on the
 * main thread hands parts of its work to them and waits; while the models' threads keep every core
 * busy the helpers wait for a core, and the main thread's pauses (and every request behind them)
 * stretch: 5-17 ms during a 30 MB detector request on two cores, where collecting alone kept its
 * health checks' worst answer at 9-17 ms (docs/configuration.md, bench/RESULTS.md issue 16). V8
 * reads the flag once at start: it cannot be set from here (`v8.setFlagsFromString` with it crashes
 * the next collection).
 */
export function collectsGarbageAlone(execArgv: readonly string[] = process.execArgv): boolean {
  // --single-threaded implies --single-threaded-gc; V8 accepts either spelling of its flags.
  return execArgv.some((arg) => /^--single[-_]threaded(?:[-_]gc)?$/.test(arg));
}
