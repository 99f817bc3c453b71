/**
 * Scripted fault injection for the crash tests (issue #22): `VMM_KILL_AT=<point>` makes the process
 * kill itself with SIGKILL when it reaches that point, exactly as `kill -9` would at that moment,
 * so a test can stop a run at every phase of a step and of a checkpoint write rather than by timing.
 * `<point>@<n>` kills at the n-th time the point is reached (1-based). Unset, a point costs one
 * property lookup.
 *
 * Points: `run:created` (config.json written, no step taken), `step:logged` (a step's update done
 * and its metrics appended, its checkpoint not yet written), `checkpoint:written` (temporary file
 * complete, not yet renamed), `checkpoint:renamed` (renamed, folder not yet synced). So
 * `VMM_KILL_AT=checkpoint:written@1` is a kill -9 during the first checkpoint write.
 */
const counts = new Map<string, number>();

/** Kills this process with SIGKILL if `VMM_KILL_AT` names `point` (see the module comment). */
export function faultPoint(point: string): void {
  const want = process.env['VMM_KILL_AT'];
  if (!want) return;
  const [name, nth] = want.split('@');
  if (name !== point) return;
  const seen = (counts.get(point) ?? 0) + 1;
  counts.set(point, seen);
  if (seen === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}
