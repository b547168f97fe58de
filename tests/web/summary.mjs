// Prints what each engine verified, from the reports the tests leave in
// artifacts/web-ENGINE.json:  node summary.mjs [ENGINE...]
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS } from './lib/daemon.mjs';
import { ENGINES } from './lib/engines.mjs';

const engines = process.argv.length > 2 ? process.argv.slice(2) : ENGINES;
console.log('\n== tests/web: what each engine verified here');
for (const engine of engines) {
  const file = path.join(ARTIFACTS, `web-${engine}.json`);
  if (!fs.existsSync(file)) {
    console.log(`\n${engine}: NO REPORT: its test did not get as far as starting the browser (see the output above)`);
    continue;
  }
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  console.log(`\n${engine}: ${r.version} — ${r.label}`);
  for (const v of r.verified) console.log(`  ok    ${v.check}${v.detail ? ': ' + v.detail : ''}`);
  for (const f of r.failed) console.log(`  FAIL  ${f.test}: ${f.error}`);
  for (const c of r.cannot) console.log(`  NOT   ${c}`);
  for (const n of r.notes) console.log(`  note  ${n}`);
}
console.log('');
