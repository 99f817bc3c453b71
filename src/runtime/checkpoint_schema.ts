/**
 * The schema of a checkpoint's JSON metadata: what `readCheckpoint` and a resumed training check
 * before any of it reaches the generators, the optimizer or the data stream (issue #22: valid JSON
 * of the wrong shape used to surface as `TypeError: undefined is not iterable` from deep inside).
 * Each function says what is wrong, with the path of the first bad field, or returns undefined.
 */

type Problem = string | undefined;

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isUint32 = (x: unknown): x is number => isCount(x) && x < 2 ** 32;
const show = (x: unknown): string => {
  const s = JSON.stringify(x);
  return s === undefined ? String(x) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
};

/** An {@link RngState}: `{s: [four uint32]}`. */
export function rngStateProblem(x: unknown, at = 'rng'): Problem {
  if (!isObject(x) || !Array.isArray(x['s'])) return `${at} is ${show(x)}, not {s: [four 32-bit words]}`;
  const s = x['s'];
  if (s.length !== 4 || !s.every(isUint32)) return `${at}.s is ${show(s)}, not four 32-bit words`;
  return undefined;
}

/** The optimizer entry of the metadata: `{config: {kind, ...}, step, slots: [names]}`. */
export function optimizerMetaProblem(x: unknown): Problem {
  if (!isObject(x)) return `${show(x)} is not {config, step, slots}`;
  const config = x['config'];
  if (!isObject(config) || typeof config['kind'] !== 'string') return `config is ${show(config)}, not an optimizer configuration`;
  for (const k of ['lr', 'beta1', 'beta2', 'eps', 'momentum']) {
    if (config[k] !== undefined && (typeof config[k] !== 'number' || !Number.isFinite(config[k]))) return `config.${k} is ${show(config[k])}, not a number`;
  }
  if (config['clipNorm'] !== undefined && config['clipNorm'] !== null && typeof config['clipNorm'] !== 'number') return `config.clipNorm is ${show(config['clipNorm'])}`;
  if (!isCount(x['step'])) return `step is ${show(x['step'])}, not a whole number`;
  const slots = x['slots'];
  if (!Array.isArray(slots) || !slots.every((s) => typeof s === 'string' && s.length > 0 && !s.includes('/'))) return `slots is ${show(slots)}, not a list of slot names`;
  return undefined;
}

/**
 * A data stream's saved state against `template`, the state of the stream of this run (so the
 * saved state is of the same kind: the same keys, lists of the same lengths): every number of a
 * stream state is a whole number (a position, an epoch, a generator word), and a generator's state
 * is an {@link RngState}.
 */
export function streamStateProblem(x: unknown, template: unknown, at = 'stream'): Problem {
  if (typeof template === 'number') return isCount(x) ? undefined : `${at} is ${show(x)}, not a whole number`;
  if (typeof template === 'string' || typeof template === 'boolean') return typeof x === typeof template ? undefined : `${at} is ${show(x)}, not a ${typeof template}`;
  if (template === null || template === undefined) return x === template ? undefined : `${at} is ${show(x)}, expected ${String(template)}`;
  if (Array.isArray(template)) {
    if (!Array.isArray(x) || x.length !== template.length) return `${at} is ${show(x)}, not a list of ${template.length}`;
    for (let i = 0; i < x.length; i++) {
      const p = streamStateProblem(x[i], template[i], `${at}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  if (!isObject(template)) return undefined;
  if (!isObject(x)) return `${at} is ${show(x)}, not an object`;
  if (Array.isArray(template['s']) && Object.keys(template).length === 1) return rngStateProblem(x, at);
  const want = Object.keys(template).sort();
  const have = Object.keys(x).sort();
  if (want.join() !== have.join()) return `${at} has the fields [${have.join(', ')}], this run's data stream has [${want.join(', ')}]`;
  for (const k of want) {
    const p = streamStateProblem(x[k], template[k], `${at}.${k}`);
    if (p) return p;
  }
  return undefined;
}

/** A trainer's state: `{step, rng, estimator: {steps, runningMean}}` (`rng` a uint32 in checkpoints before the unified generator). */
export function trainerStateProblem(x: unknown, at = 'trainer'): Problem {
  if (!isObject(x)) return `${at} is ${show(x)}, not {step, rng, estimator}`;
  if (!isCount(x['step'])) return `${at}.step is ${show(x['step'])}, not a whole number`;
  if (!isUint32(x['rng'])) {
    const p = rngStateProblem(x['rng'], `${at}.rng`);
    if (p) return p;
  }
  const est = x['estimator'];
  if (!isObject(est)) return `${at}.estimator is ${show(est)}, not {steps, runningMean}`;
  if (!isCount(est['steps'])) return `${at}.estimator.steps is ${show(est['steps'])}, not a whole number`;
  const mean = est['runningMean'];
  if (mean !== null && (typeof mean !== 'number' || !Number.isFinite(mean))) return `${at}.estimator.runningMean is ${show(mean)}, not a number or null`;
  return undefined;
}

/**
 * The metadata a training checkpoint carries (`{trainer, stream, trainedSeconds?}`, written by
 * src/jobs/train_loop.ts), against the state of this run's data stream.
 */
export function trainingMetaProblem(x: unknown, streamTemplate: unknown): Problem {
  if (!isObject(x)) return `its metadata is ${show(x)}, not {trainer, stream}`;
  const p = trainerStateProblem(x['trainer']) ?? streamStateProblem(x['stream'], streamTemplate);
  if (p) return p;
  const t = x['trainedSeconds'];
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t < 0)) return `trainedSeconds is ${show(t)}, not a number of seconds`;
  return undefined;
}
