import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');

describe('README', () => {
  it('"Library use" shows examples/library.mjs verbatim (the script the consumer check runs)', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const script = readFileSync(join(root, 'examples', 'library.mjs'), 'utf8').trimEnd();
    const section = readme.slice(readme.indexOf('## Library use'));
    expect(section).toContain('```js\n' + script + '\n```');
    expect(script.split('\n').length).toBeLessThanOrEqual(21);
  });

  it('keeps the two set-up commands at the top', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme.indexOf('npm install && npx vmm train models/vma_mnist.vmm')).toBeLessThan(readme.indexOf('## Commands'));
    expect(readme).toContain('npm test ');
  });
});
