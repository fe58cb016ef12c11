// The benchmark's comparison with DBOS Transact (`npm run bench -- --mode engine --dbos`,
// docs/dbos-comparison.md): each DBOS row is paired with the engine row of the same
// load, and the ratio printed is the engine's sagas/s over DBOS's.
import test from 'ava';
import { printRatios, ratios } from '../scripts/bench/report.js';
import { benchFigure, printedTable } from './fixtures/bench-figures.js';

const figure = benchFigure;

test('each DBOS row is compared with the engine row of the same concurrency: engine sagas/s over DBOS sagas/s', (t) => {
  const figures = [
    figure({ mode: 'engine', concurrency: 50, sagas_per_second: 400 }),
    figure({ mode: 'engine', concurrency: 200, sagas_per_second: 700 }),
    figure({ mode: 'dbos', concurrency: 50, sagas_per_second: 160 }),
    figure({ mode: 'dbos', concurrency: 200, sagas_per_second: 175 }),
  ];
  t.deepEqual(
    ratios(figures).map((r) => [r.concurrency, r.engine, r.dbos, r.ratio]),
    [
      [50, 400, 160, 2.5],
      [200, 700, 175, 4],
    ],
  );
});

test('a DBOS row without an engine row of the same load gives no ratio', (t) => {
  const figures = [
    figure({ mode: 'engine', concurrency: 50, sagas_per_second: 400 }),
    figure({ mode: 'full', concurrency: 200, bffs: 1, sagas_per_second: 300 }),
    figure({ mode: 'dbos', concurrency: 200, sagas_per_second: 175 }),
  ];
  t.deepEqual(ratios(figures), []);
});

test('the ratio line names the load and both throughputs, and DBOS runs first or last alike', (t) => {
  const lines: string[] = [];
  const dbosFirst = [figure({ mode: 'dbos', sagas_per_second: 178 }), figure({ mode: 'engine', sagas_per_second: 707 })];
  printRatios(dbosFirst, (line) => lines.push(line));
  t.deepEqual(lines, [
    'engine / dbos at concurrency 200: 707 / 178 sagas/s = 3.97×',
    '  CPU s per 1,000 sagas (process + PostgreSQL): dbos 1.4 / engine 1.4 = 1×',
  ]);
});

test('the CPU comparison adds the process\'s and PostgreSQL\'s CPU per 1,000 sagas of each side', (t) => {
  const figures = [
    figure({ mode: 'engine', orchestrator_cpu_s_per_1000: 0.7, postgres_cpu_s_per_1000: 0.55 }),
    figure({ mode: 'dbos', orchestrator_cpu_s_per_1000: 3.2, postgres_cpu_s_per_1000: 4.3 }),
  ];
  t.deepEqual(
    ratios(figures).map((r) => [r.engine_cpu_s_per_1000, r.dbos_cpu_s_per_1000, r.cpu_ratio]),
    [[1.25, 7.5, 6]],
  );
});

test('the table shows a DBOS row under mode dbos, with no BFF, like an engine row', (t) => {
  const { header, rows } = printedTable([figure({ mode: 'engine' }), figure({ mode: 'dbos', sagas_per_second: 178, commits_per_saga: 17.7 })]);
  const at = (name: string) => header.indexOf(name);
  t.deepEqual(
    rows.map((r) => [r[at('mode')], r[at('BFFs')], r[at('sagas/s')], r[at('commits/saga')]]),
    [
      ['engine', '-', '700', '0.06'],
      ['dbos', '-', '178', '17.7'],
    ],
  );
});
