/**
 * The language server cannot be deafened (issue #22): a malformed header (`Content-Length: abc`,
 * `-5`, none, a bare blank line, an absurd length) or a body that is not JSON costs that message
 * only; the reader resynchronises and the server answers what follows, `shutdown` and `exit`
 * included. A unit test of the reader (fuzzed: junk between frames, any chunking) and the real
 * server over stdio.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message } from 'vscode-languageserver/node';
import { ResyncingMessageReader } from '../../src/lsp/framing.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const frame = (o: unknown): string => {
  const b = Buffer.from(JSON.stringify(o), 'utf8');
  return `Content-Length: ${b.length}\r\n\r\n${b.toString('latin1')}`;
};

/** Feeds `bytes` in the given chunks to a reader; the messages it delivers and what it skipped. */
function read(bytes: Buffer, cuts: number[] = []): { messages: Message[]; skipped: string[] } {
  const input = new PassThrough();
  const skipped: string[] = [];
  const messages: Message[] = [];
  new ResyncingMessageReader(input, (w) => skipped.push(w)).listen((m) => messages.push(m));
  let at = 0;
  for (const cut of [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)) {
    input.emit('data', bytes.subarray(at, cut));
    at = cut;
  }
  input.emit('data', bytes.subarray(at));
  return { messages, skipped };
}

const MALFORMED = [
  'Content-Length: abc\r\n\r\n',
  'Content-Length: -5\r\n\r\n',
  'Content-Type: application/vscode-jsonrpc\r\n\r\n',
  '\r\n',
  'Content-Length: 99999999999999\r\n\r\n',
  'Content-Length: 7\r\n\r\nnotjson',
  'Content-Length: 2\r\nContent-Length: 3\r\n\r\n',
  'x'.repeat(10_000),
];

describe('the message reader', () => {
  it.each(MALFORMED.map((m) => [JSON.stringify(m.slice(0, 40)), m]))('after %s, reads the messages that follow', (_name, bad) => {
    const after = [
      { jsonrpc: '2.0', id: 1, method: 'shutdown' },
      { jsonrpc: '2.0', method: 'exit' },
    ];
    const { messages } = read(Buffer.from(bad + after.map(frame).join(''), 'latin1'));
    expect(messages).toEqual(after);
  });

  it('fuzzed: junk between frames (without a Content-Length of its own), cut into any chunks, loses no frame', () => {
    const junk = fc.oneof(
      fc.constantFrom(...MALFORMED.filter((m) => !/^Content-Length: \d{1,3}\r/.test(m))),
      fc.string({ unit: 'binary-ascii', maxLength: 40 }).filter((s) => !/content-length/i.test(s)),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(junk, fc.jsonValue({ maxDepth: 2 })), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(2000), { maxLength: 8 }), (parts, cuts) => {
        const messages = parts.map(([, v], id) => ({ jsonrpc: '2.0', id, result: v ?? null }));
        const bytes = Buffer.from(parts.map(([j], i) => j + frame(messages[i])).join(''), 'latin1');
        const got = read(bytes, cuts).messages;
        expect(got).toEqual(JSON.parse(JSON.stringify(messages)));
      }),
      { numRuns: 300, seed: 22 },
    );
  });
});

describe('vmm lsp over stdio', () => {
  it('answers hover after each malformed header, then shuts down and exits with code 0', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'vmm.mjs'), 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const responses = new Map<number, Message>();
    let waiting: (() => void) | undefined;
    new ResyncingMessageReader(child.stdout!).listen((m) => {
      const id = (m as { id?: unknown }).id;
      if (typeof id === 'number') responses.set(id, m);
      waiting?.();
    });
    const reply = async (id: number): Promise<Message> => {
      const deadline = Date.now() + 20_000;
      while (!responses.has(id)) {
        if (Date.now() > deadline) throw new Error(`no reply to request ${id}; stderr: ${stderr}`);
        await new Promise<void>((r) => {
          waiting = r;
          setTimeout(r, 200);
        });
      }
      return responses.get(id)!;
    };
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const send = (s: string) => child.stdin!.write(Buffer.from(s, 'latin1'));
    send(frame({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { processId: null, rootUri: null, capabilities: {} } }));
    await reply(0);
    send(frame({ jsonrpc: '2.0', method: 'initialized', params: {} }));
    const uri = 'file:///virtual/a.vmm';
    send(frame({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: { uri, languageId: 'vmm', version: 1, text: 'model m\ndata x : binary[4]\n' } } }));
    let id = 1;
    for (const bad of MALFORMED) {
      send(bad);
      const ask = id++;
      send(frame({ jsonrpc: '2.0', id: ask, method: 'textDocument/hover', params: { textDocument: { uri }, position: { line: 1, character: 5 } } }));
      const r = await reply(ask);
      expect(r, JSON.stringify(bad)).toHaveProperty('result');
    }
    expect(stderr).toContain('vmm lsp: skipped malformed input');
    send(frame({ jsonrpc: '2.0', id: 100, method: 'shutdown' }));
    await reply(100);
    send(frame({ jsonrpc: '2.0', method: 'exit' }));
    expect(await exited).toBe(0);
  }, 40_000);
});
