/**
 * `vmm export pytorch MODEL.vmm --out DIR`: the model as a self-contained Python package
 * (src/export/torch/, docs/scaling.md). The settings flags are `vmm train`'s; a construct the
 * exporter cannot emit is a located diagnostic (VMM3040) and nothing is written.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { join } from 'node:path';
import type { Command } from 'commander';
import { renderDiagnostics } from '../diagnostics/render.ts';
import { DataError } from '../data/paths.ts';
import { exportData } from '../export/torch/data.ts';
import { exportPytorch, writePackage } from '../export/torch/package.ts';
import { addEstimatorArgFlags, readSource, settingOverrides, type SettingFlags } from './front_end.ts';

export function registerExportCommand(program: Command): void {
  const exp = program.command('export').description('write a model for another framework');
  const cmd = exp
    .command('pytorch <model>')
    .description('a Python package (model.py, vmm_runtime.py, train.py; torch and numpy only) that trains the model alone or under torchrun and writes a vmm run folder')
    .requiredOption('--out <dir>', 'the folder to write')
    .option('--estimator <kind>', 'the estimator (default: the file\'s)')
    .option('--k <n>', 'samples per example', (v) => Number(v))
    .option('--batch <n>', 'examples per step', (v) => Number(v))
    .option('--lr <x>', 'learning rate', (v) => Number(v))
    .option('--data <dir>', 'where vmm finds the data set it writes into the package')
    .option('--no-data-set', 'write no data/ (train.py then needs --data FILE)');
  addEstimatorArgFlags(cmd).action((model: string, flags: SettingFlags & { out: string; data?: string; dataSet: boolean }) => {
    const src = readSource(model);
    const { out, data, dataSet, ...settings } = flags;
    const r = exportPytorch(src.text, { overrides: settingOverrides(settings) });
    if (r.diagnostics.length) process.stderr.write(renderDiagnostics(src, r.diagnostics) + '\n');
    if (!r.files || !r.ir) {
      process.exitCode = 1;
      return;
    }
    writePackage(out, r.files);
    let note = '';
    if (dataSet) {
      let d: ReturnType<typeof exportData>;
      try {
        d = exportData(r.ir, data);
      } catch (e) {
        // The package is written; only its copy of the data is missing (train.py --data FILE, or export again once the data is here).
        if (!(e instanceof DataError)) throw e;
        process.stderr.write(`vmm: ${e.message}\n`);
        d = { why: 'no data/ written (see above): train.py needs --data FILE, or export again once the data is found' };
        process.exitCode = 1;
      }
      if ('why' in d) note = `\n  ${d.why}`;
      else {
        mkdirSync(dirname(join(out, d.name)), { recursive: true });
        writeFileSync(join(out, d.name), d.bytes);
      }
    }
    process.stdout.write(
      `wrote ${out}: model.py, vmm_runtime.py, train.py${note}\n` +
        `  python ${join(out, 'train.py')} --steps ${r.ir.train.steps} --out RUN     (then: vmm eval RUN)\n` +
        `  torchrun --nproc_per_node 2 ${join(out, 'train.py')} --steps ${r.ir.train.steps} --out RUN\n` +
        `  (Debian's torch 1.13 on Python 3.11: python3 -m torch.distributed.run --redirects 1 --tee 1 --nproc_per_node 2 ...; docs/scaling.md)\n`,
    );
  });
}
