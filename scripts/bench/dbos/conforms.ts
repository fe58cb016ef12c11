// The benchmark declares the part of DBOS Transact it uses (DbosApi, in ../dbos.ts) so
// that the product type-checks without DBOS installed. This file checks that
// declaration against the package's own types: `npm run typecheck` here, once
// `npm ci` has installed it (the benchmark does that on first use of --dbos).
import { DBOS } from '@dbos-inc/dbos-sdk';
import type { DbosApi } from '../dbos.js';

export const conforms: DbosApi = DBOS;
