// php/resources/dashboard/vendor/ is committed: tests/bin/build-dashboard-assets.sh
// must reproduce it byte for byte from the lock file, and the page must use only it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PAGE_ROOT } from './page-server.mjs';

const ROOT = path.resolve(PAGE_ROOT, '../../..');

test('the build script reproduces the committed vendor/ files byte for byte', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-vendor-'));
  try {
    execFileSync(path.join(ROOT, 'tests/bin/build-dashboard-assets.sh'), [out], { stdio: 'pipe' });
    const committed = fs.readdirSync(path.join(PAGE_ROOT, 'vendor')).sort();
    assert.deepEqual(fs.readdirSync(out).sort(), committed);
    for (const name of committed) {
      assert.ok(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(PAGE_ROOT, 'vendor', name))), `vendor/${name} differs from what the script builds`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('the page loads nothing from another origin: no src, href, CSS url() or import with an http(s):// or // URL in its HTML, CSS and modules', () => {
  const files = ['index.html', 'dashboard.css', ...fs.readdirSync(path.join(PAGE_ROOT, 'js')).map((f) => `js/${f}`)];
  for (const f of files) {
    const src = fs.readFileSync(path.join(PAGE_ROOT, f), 'utf8');
    assert.doesNotMatch(src, /(src|href)\s*=\s*["'](https?:)?\/\//, f);
    assert.doesNotMatch(src, /import[^'"]*['"](https?:)?\/\//, f);
    assert.doesNotMatch(src, /url\(\s*['"]?(https?:)?\/\//, f);
  }
});
