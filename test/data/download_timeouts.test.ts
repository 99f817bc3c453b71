/**
 * A hung download server is not waited on in silence (issue #22): after a fifth of the timeout
 * the log says what is waited for, after the timeout the download stops with a DataError (a
 * server that never answers, one that stops sending mid-body: the .part is kept for a resume).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDataSet, type DataSetSource } from '../../src/data/download.ts';
import { DataError } from '../../src/data/paths.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-download-timeouts-'));
const body = new Uint8Array(4096).map((_, i) => i % 251);
let server: Server;
let base = '';
const hanging: ServerResponse[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((req, res) => {
    hanging.push(res);
    if (req.url?.startsWith('/silent/')) return; // never answers
    // Headers and the first quarter of the body, then nothing.
    res.writeHead(200, { 'Content-Length': body.length });
    res.write(body.subarray(0, 1024));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

function source(mode: string): DataSetSource {
  return {
    name: `hung-${mode}`,
    description: 'a test set',
    baseUrl: `${base}/${mode}`,
    licence: 'none',
    files: [{ name: 'data.bin', size: body.length, sha256: createHash('sha256').update(body).digest('hex') }],
    produces: ['data.out'],
    convert: async () => undefined,
  };
}

describe('download timeouts', () => {
  it('a server that never answers: a visible wait, then a DataError naming the URL', async () => {
    const log: string[] = [];
    const dir = join(tmp, 'silent');
    const t = performance.now();
    const e = await getDataSet(source('silent'), { dir, timeoutSeconds: 1, log: (m) => log.push(m) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DataError);
    expect((e as Error).message).toBe(`${base}/silent/data.bin: no answer from the server in 1 s; check the connection or pass --mirror, then run the command again`);
    expect(performance.now() - t).toBeLessThan(5_000);
    expect(log.some((l) => /^waiting for 127\.0\.0\.1:\d+ \(0 of 4096 bytes of data\.bin\): no data for 0\.\d s; giving up after 1 s$/.test(l)), log.join('\n')).toBe(true);
  }, 10_000);

  it('a server that stops sending: the transfer is given up and its .part kept for a resume', async () => {
    const log: string[] = [];
    const dir = join(tmp, 'stall');
    const e = await getDataSet(source('stall'), { dir, timeoutSeconds: 1, log: (m) => log.push(m) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DataError);
    expect((e as Error).message).toBe(`${base}/stall/data.bin: the transfer was interrupted after 1024 of 4096 bytes (no data for 1 s); run the command again to resume`);
    expect(log.some((l) => l.includes('(1024 of 4096 bytes of data.bin): no data for'))).toBe(true);
    expect(existsSync(join(dir, '.downloads', 'data.bin.part'))).toBe(true);
  }, 10_000);
});
