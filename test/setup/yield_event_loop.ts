import { afterEach } from 'vitest';

// The tfjs tests are long synchronous computations. A worker whose event loop
// only ever runs microtasks never reads vitest's RPC replies, and after 60 s
// vitest reports "Timeout calling onTaskUpdate" as an unhandled error that
// fails the run (vitest-dev/vitest#6479, #8164). setImmediate runs after the
// I/O poll phase, so one macrotask turn per test lets the replies through.
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
