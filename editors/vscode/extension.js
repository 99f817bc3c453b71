// The VS Code client of the vmm language server: starts `vmm lsp --stdio` for .vmm files.
// Plain CommonJS, no build step; `npm run package` (in this folder) makes the .vsix.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

/** The server command without `lsp --stdio`: the setting, else the workspace's bin/vmm.mjs, else `vmm`. */
function serverCommand() {
  const configured = vscode.workspace.getConfiguration('vmm').get('server.command', []);
  if (Array.isArray(configured) && configured.length > 0) return configured;
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const bin = join(folder.uri.fsPath, 'bin', 'vmm.mjs');
    if (existsSync(bin)) return ['node', bin];
  }
  return ['vmm'];
}

function activate(context) {
  const [command, ...args] = serverCommand();
  // TransportKind.stdio appends `--stdio`: the server runs as `vmm lsp --stdio`.
  const run = { command, args: [...args, 'lsp'], transport: TransportKind.stdio };
  client = new LanguageClient(
    'vmm',
    'vmm language server',
    { run, debug: run },
    { documentSelector: [{ language: 'vmm' }] },
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
