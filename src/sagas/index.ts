// Every saga type this build can run. Add a folder under src/sagas/ and list it here.
import type { AnySagaType, PolicyOptions } from '../saga/saga-type.js';
import { crearCampanaCompleta } from './crear-campana-completa/index.js';

export function sagaTypes(opts: PolicyOptions = {}): AnySagaType[] {
  return [crearCampanaCompleta(opts) as unknown as AnySagaType];
}
