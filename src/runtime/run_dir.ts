/**
 * A run directory holds everything a training run produces, so nothing is lost when it is
 * interrupted:
 *
 *   config.json       the model source, resolved settings, seed, data, backend (written once)
 *   model.vmm         a copy of the model file as trained
 *   metrics.jsonl     one JSON object per line: training and validation figures
 *   checkpoint/       the latest complete checkpoint (replaced atomically)
 *   final/            the weights at the end of training
 *   summary.json      final figures
 *
 * `vmm train --resume DIR` continues from checkpoint/ with the same config.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../report/atomic.ts';
import type { IrProgram } from '../ir/types.ts';
import { RunError } from '../cli/errors.ts';
import type { DataOptions } from './data_source.ts';

export interface RunConfig {
  version: 1;
  modelPath: string;
  source: string;
  /** The IR's settings after command-line overrides. */
  train: IrProgram['train'];
  data: DataOptions;
  seed: number;
  checkpointEvery: number;
  validEvery: number;
  validSize: number;
  createdAt: string;
}

export class RunDir {
  constructor(readonly path: string) {}

  static create(path: string, config: RunConfig): RunDir {
    if (existsSync(join(path, 'config.json'))) {
      throw new RunError(`${path} already holds a run; continue it with --resume ${path}, or pick another --out`);
    }
    mkdirSync(path, { recursive: true });
    const dir = new RunDir(path);
    writeFileAtomicSync(join(path, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileAtomicSync(join(path, 'model.vmm'), config.source);
    return dir;
  }

  static open(path: string): { dir: RunDir; config: RunConfig } {
    const file = join(path, 'config.json');
    if (!existsSync(file)) throw new RunError(`${path} is not a run directory (no config.json)`);
    const config = JSON.parse(readFileSync(file, 'utf8')) as RunConfig;
    return { dir: new RunDir(path), config };
  }

  get checkpointPath(): string {
    return join(this.path, 'checkpoint');
  }

  get finalPath(): string {
    return join(this.path, 'final');
  }

  file(name: string): string {
    return join(this.path, name);
  }

  appendMetrics(record: Record<string, unknown>): void {
    appendFileSync(join(this.path, 'metrics.jsonl'), JSON.stringify(record) + '\n');
  }

  readMetrics(): Record<string, unknown>[] {
    const file = join(this.path, 'metrics.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  writeJson(name: string, value: unknown): void {
    writeFileAtomicSync(join(this.path, name), JSON.stringify(value, null, 2) + '\n');
  }
}
