import { runSeed } from './world.js';
const r = await runSeed(Number(process.argv[2]), { keepTrace: 100000 });
const pat = process.argv[3] ?? '';
for (const l of r.trace) if (l.includes(pat)) console.log(l);
