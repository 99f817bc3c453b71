/**
 * A user's mistake is one line and exit 1 (or 2 for misuse of the command), never a stack; run
 * folders never lie (issue #13); `-` and `--json` (issue #11).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fileSystemMessage } from '../../src/cli/errors.ts';
import { stdin } from '../../src/cli/front_end.ts';
import { runCli as run } from './run_cli.ts';
import { RunDir } from '../../src/jobs/run_dir.ts';

const ROOT = join(__dirname, '..', '..');
const MODELS = join(ROOT, 'models');
const VAE = join(MODELS, 'vae.vmm');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-user-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


/** One line on stderr, starting `vmm: `, and no JavaScript stack. */
function oneLine(err: string): string {
  const lines = err.split('\n').filter((l) => l.trim() && !l.startsWith('backend: '));
  expect(lines, err).toHaveLength(1);
  expect(err).not.toMatch(/\n\s+at /);
  expect(err).not.toContain('internal error');
  return lines[0]!;
}

const tiny = ['--batch', '2', '--steps', '1', '--valid-size', '2', '--quiet', '--backend', 'wasm'];

describe('flags', () => {
  it('echo the value the user typed', async () => {
    for (const [flag, value, says] of [
      ['--seed', '-5', 'a whole number from 0 to 2^32 - 1'],
      ['--lr', '1e999', 'a number above 0 and at most 1000'],
      ['--steps', '1e16', 'a whole number from 1 to 2^53 - 1'],
      ['--batch', '0', 'a whole number from 1 to 1,000,000'],
      ['--k', '2.5', 'a whole number from 1 to 100,000'],
      ['--distractors', 'many', 'a whole number from 0 to 1,000,000'],
    ] as const) {
      const r = await run('train', VAE, flag, value);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.err).toContain(`vmm: ${flag} expects ${says}, got '${value}'`);
    }
  });
});

describe('check and fmt', () => {
  it('check of several files checks them all when one is missing (exit 2)', async () => {
    const r = await run('check', join(tmp, 'missing.vmm'), VAE, join(MODELS, 'gmm.vmm'));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`cannot read '${join(tmp, 'missing.vmm')}': no such file or directory (ENOENT)`);
    expect(r.out).toContain('vae.vmm: ok');
    expect(r.out).toContain('gmm.vmm: ok');
  });

  it('- reads standard input in check and fmt', async () => {
    const read = vi.spyOn(stdin, 'read');
    try {
      read.mockReturnValue(readFileSync(VAE, 'utf8'));
      const ok = await run('check', '-');
      expect(ok.code).toBe(0);
      expect(ok.out).toBe('<stdin>: ok\n');
      read.mockReturnValue('data x : binary[4]\nobserve x ~ Bernoulli(logits: zz)\n');
      const bad = await run('check', '-');
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('<stdin>:2:31: error[VMM2001]');
      read.mockReturnValue('const D=4\n');
      const fmt = await run('fmt', '-');
      expect(fmt.code).toBe(0);
      expect(fmt.out).toBe('const D = 4\n');
    } finally {
      read.mockRestore();
    }
  });

  it('check --json prints every file with located diagnostics on stdout, nothing on stderr', async () => {
    const bad = join(tmp, 'json.vmm');
    writeFileSync(bad, 'data x : binary[4]\nobserve x ~ Bernoulli(logits: zz)\n');
    const r = await run('check', '--json', VAE, bad);
    expect(r.code).toBe(1);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out) as { ok: boolean; files: { file: string; ok: boolean; diagnostics: { code: string; line: number; col: number; start: number; end: number }[] }[] };
    expect(j.ok).toBe(false);
    expect(j.files.map((f) => f.ok)).toEqual([true, false]);
    const d = j.files[1]!.diagnostics.find((x) => x.code === 'VMM2001')!;
    expect([d.line, d.col]).toEqual([2, 31]);
    expect(readFileSync(bad, 'utf8').slice(d.start, d.end)).toBe('zz');
  });

  it('a file-system failure is one line naming the file (EACCES, as fmt of a read-only file gets)', () => {
    const e = Object.assign(new Error("EACCES: permission denied, open 'm.vmm'"), { code: 'EACCES', syscall: 'open', path: 'm.vmm', errno: -13 });
    expect(fileSystemMessage(e)).toBe("cannot open 'm.vmm': permission denied (EACCES)");
    expect(fileSystemMessage(new Error('other'))).toBeUndefined();
  });
});

describe('memory budget', () => {
  it('compile prints the figures, and refuses a batch that cannot fit (one line, exit 1)', async () => {
    const ok = await run('compile', VAE);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/memory: 667,248 parameters \([\d.]+ MiB with gradients and Adam slots\), activations about/);
    const big = await run('compile', VAE, '--batch', '1000000', '--k', '100000');
    expect(big.code).toBe(1);
    expect(oneLine(big.err)).toMatch(/^vmm: the model does not fit: .* 667,248 parameters/);
  });

  it('train refuses a huge --k before making a run folder', async () => {
    const out = join(tmp, 'huge-k');
    const r = await run('train', VAE, '--out', out, '--k', '100000', '--batch', '100000', '--quiet', '--backend', 'wasm');
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toContain('the model does not fit');
    expect(existsSync(out)).toBe(false);
  });
});

describe('run folders', () => {
  const runDir = join(tmp, 'run');
  beforeAll(async () => {
    const r = await run('train', VAE, '--out', runDir, '--data', join(tmp, 'anywhere'), ...tiny);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`vmm: note: --data ${join(tmp, 'anywhere')} is ignored: the mnist data set is embedded`);
  }, 60_000);

  it('--out into a folder that is not a vmm run is refused and left untouched', async () => {
    const foreign = join(tmp, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'metrics.jsonl'), 'mine\n');
    const r = await run('train', VAE, '--out', foreign, ...tiny);
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toContain('is not empty and is not a vmm run');
    expect(readdirSync(foreign)).toEqual(['metrics.jsonl']);
    expect(readFileSync(join(foreign, 'metrics.jsonl'), 'utf8')).toBe('mine\n');
  });

  it('--out below a file is one line naming the folder, exit 1', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, '');
    const r = await run('train', VAE, '--out', join(file, 'run'), ...tiny);
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toMatch(/cannot create the folder '.*a-file.*': a part of the path is not a folder \(ENOTDIR\)|is a file, not a folder/);
  });

  it('a failed start (data not found) leaves no folder, and names the vmm command that makes the data', async () => {
    const out = join(tmp, 'no-data');
    const r = await run('train', VAE, '--out', out, '--dataset', 'omniglot', '--data', join(tmp, 'nowhere'), ...tiny);
    expect(r.code).toBe(1);
    expect(r.err).toContain('vmm data get omniglot');
    expect(r.err).not.toContain('convertOmniglotZips');
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  });

  it('a run folder that never reached a checkpoint can be reused by the same model only', () => {
    const dir = join(tmp, 'unstarted');
    mkdirSync(dir);
    const source = readFileSync(VAE, 'utf8');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ source }));
    expect(RunDir.refusal(dir, source)).toBeUndefined();
    expect(RunDir.refusal(dir, source + '\n')).toContain('holds a run of another model');
    expect(RunDir.refusal(runDir, readFileSync(VAE, 'utf8'))).toContain('--resume');
  });

  it('--resume with another model file is refused, saying what differs', async () => {
    const r = await run('train', join(MODELS, 'gmm.vmm'), '--resume', runDir, '--quiet');
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toContain('is not the model of the run');
  });

  it('--resume with an --out naming another folder is refused', async () => {
    const r = await run('train', '--resume', runDir, '--out', join(tmp, 'elsewhere'), '--quiet');
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toContain('name different folders');
    expect(existsSync(join(tmp, 'elsewhere'))).toBe(false);
  });

  it('--resume with flags that differ from the run is refused, listing them; equal ones are fine', async () => {
    const r = await run('train', '--resume', runDir, '--lr', '0.01', '--batch', '2', '--seed', '3', '--quiet');
    expect(r.code).toBe(1);
    const line = oneLine(r.err);
    expect(line).toContain("--lr 0.01 differs from the run's 0.001");
    expect(line).toContain("--seed 3 differs from the run's 1");
    expect(line).not.toContain('--batch');
  });

  it('--resume with --steps not above the current step says so and rewrites nothing', async () => {
    const summary = readFileSync(join(runDir, 'summary.json'), 'utf8');
    const same = await run('train', '--resume', runDir, '--quiet', '--backend', 'wasm');
    expect(same.code).toBe(1);
    expect(oneLine(same.err)).toContain('is already complete (1 step)');
    const r = await run('train', VAE, '--resume', runDir, '--steps', '1', '--quiet', '--backend', 'wasm');
    expect(r.code).toBe(1);
    expect(r.err).not.toContain('NaN');
    expect(readFileSync(join(runDir, 'summary.json'), 'utf8')).toBe(summary);
  });

  it('a broken config.json is one line naming the file, for train --resume and eval', async () => {
    const broken = join(tmp, 'broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'config.json'), '{"version": 1, oops');
    const syntax = await run('train', '--resume', broken);
    expect(syntax.code).toBe(1);
    expect(oneLine(syntax.err)).toContain(`${join(broken, 'config.json')} is damaged (not valid JSON`);
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(broken, 'config.json'), JSON.stringify({ ...config, train: { ...(config['train'] as object), batch: 'many' } }));
    const typed = await run('eval', broken, '--backend', 'wasm');
    expect(typed.code).toBe(1);
    expect(oneLine(typed.err)).toContain("is not a valid vmm run configuration ('train.batch' is not a number)");
    writeFileSync(join(broken, 'config.json'), JSON.stringify({ ...config, train: { ...(config['train'] as object), steps: 1e300 } }));
    const range = await run('train', '--resume', broken);
    expect(range.code).toBe(1);
    expect(oneLine(range.err)).toContain("'train.steps' must be a whole number from 1 to 2^53 - 1");
  });

  it('a NaN stop before any checkpoint does not claim one, and the same command may start the folder again', async () => {
    const model = join(tmp, 'blowup.vmm');
    writeFileSync(
      model,
      'model blowup\ndata x : binary[784]\nnet dec = mlp(4, 8, 784)\nlatent z : real[4] ~ Normal(loc: 0, scale: 1)\n' +
        'observe x ~ Bernoulli(logits: dec(exp(exp(exp(z * 100)))))\ntrain { estimator = iwae(k: 1) }\n',
    );
    const out = join(tmp, 'nan');
    for (let i = 0; i < 2; i++) {
      const r = await run('train', model, '--out', out, ...tiny);
      expect(r.code).toBe(1);
      expect(r.err).toContain('training stopped');
      expect(r.err).toContain('No checkpoint was written before it');
      expect(r.err).not.toContain('last good checkpoint');
      expect(existsSync(join(out, 'checkpoint'))).toBe(false);
    }
  });

  it('a damaged checkpoint on --resume is one line naming the file (CheckpointError)', async () => {
    const copy = join(tmp, 'damaged');
    cpSync(runDir, copy, { recursive: true });
    const blob = join(copy, 'checkpoint', readdirSync(join(copy, 'checkpoint'))[0]!);
    writeFileSync(blob, readFileSync(blob).subarray(0, 1000));
    const r = await run('train', '--resume', copy, '--steps', '3', '--quiet', '--backend', 'wasm');
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toContain(blob);
  });

  it('a backend that is not installed is one line (BackendError), before any folder is made', async () => {
    const out = join(tmp, 'no-backend');
    const r = await run('train', VAE, '--out', out, '--backend', 'tensorflow', '--quiet', '--batch', '2', '--steps', '1', '--valid-size', '2');
    // Where native TensorFlow is installed this trains; elsewhere it is refused cleanly.
    if (r.code !== 0) {
      expect(r.code).toBe(1);
      expect(oneLine(r.err)).toContain('--backend tensorflow');
      expect(existsSync(out)).toBe(false);
    }
  });
});
