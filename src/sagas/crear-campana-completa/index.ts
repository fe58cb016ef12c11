// The Aeropartners campaign saga as the system sees it: its route, its request,
// its versions, its participants and the business data it can be searched by.
import { defaultPolicies, type PolicyOptions, type SagaType } from '../../saga/saga-type.js';
import { exampleRequest } from './example.js';
import { crearCampanaCompletaSchema, type CrearCampanaCompleta } from './request.js';
import { Estado } from './states.js';
import { TIPO_CREAR_CAMPANA_COMPLETA, version1 } from './v1.js';

export { TIPO_CREAR_CAMPANA_COMPLETA } from './v1.js';

export function crearCampanaCompleta(opts: PolicyOptions = {}): SagaType<CrearCampanaCompleta> {
  const policies = defaultPolicies(opts);
  return {
    tipo: TIPO_CREAR_CAMPANA_COMPLETA,
    route: '/saga/crear-campana-completa',
    request: crearCampanaCompletaSchema,
    requestNotes:
      '`reporte` puede traer `fecha_inicio` y `fecha_fin` junto a `tipo_reporte` (sin `filtros`): pasan a ser los filtros del reporte.',
    accept(body) {
      const { timeout_minutos, ...datos } = crearCampanaCompletaSchema.parse(body);
      return { datos, timeoutMinutos: timeout_minutos };
    },
    versions: [version1(policies)],
    states: Object.values(Estado),
    participants: {
      campaigns: { env: 'CAMPAIGNS_URL', defaultUrl: 'http://127.0.0.1:8080' },
      pagos: { env: 'PAGOS_URL', defaultUrl: 'http://127.0.0.1:8000' },
      reporting: { env: 'REPORTING_URL', defaultUrl: 'http://127.0.0.1:8000' },
    },
    searchKeys: (datos) => ({ id_afiliado: datos.campana.id_afiliado, referencia_pago: datos.pago.referencia_pago }),
    searchKeyNames: ['id_afiliado', 'referencia_pago'],
    example: exampleRequest,
  };
}
