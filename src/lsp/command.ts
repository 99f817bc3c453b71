/**
 * `vmm lsp [--stdio]`: the language server (./server.ts), for editors. Registered by src/cli/main.ts;
 * the server is loaded only when the command runs.
 */
import type { Command } from 'commander';

export function registerLspCommand(program: Command): void {
  program
    .command('lsp')
    .description('run the language server (Language Server Protocol over stdio), for editors')
    .option('--stdio', 'talk over stdin / stdout (the default and only transport)')
    .action(async () => {
      // stdout carries the protocol: anything a library logs goes to stderr instead.
      console.log = console.info = console.warn = console.debug = console.error;
      const { runStdioServer } = await import('./server.ts');
      await runStdioServer();
    });
}
