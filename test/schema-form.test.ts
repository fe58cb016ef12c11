// The dashboard's create form is made of a saga type's request schema
// (src/ui/schema-form.js): every leaf a field named by its path, filled from
// the example, and the body rebuilt from what the person typed.
import test from 'ava';
import { sagaTypesOf } from '../src/http/dashboard.js';
import { bodyOf, fieldsOf, groupsOf, valuesOf } from '../src/ui/schema-form.js';
import { campaignType } from './fixtures/sagas.js';

const [campaign] = sagaTypesOf([campaignType()]).tipos;
const fields = fieldsOf(campaign!.esquema);
const example = campaign!.ejemplo as { pago: { monto: number }; campana: Record<string, unknown> };

test('every leaf of the campaign request is a field named by its path, grouped as the body is', (t) => {
  t.deepEqual(
    groupsOf(fields).map((g) => [g.label, g.fields.map((f) => f.name)]),
    [
      ['Campaña', ['campana.nombre', 'campana.tipo', 'campana.presupuesto.monto', 'campana.presupuesto.moneda', 'campana.fecha_inicio', 'campana.fecha_fin', 'campana.id_afiliado', 'campana.descripcion']],
      ['Pago', ['pago.id_afiliado', 'pago.monto', 'pago.moneda', 'pago.referencia_pago']],
      ['Reporte', ['reporte.tipo_reporte', 'reporte.filtros', 'reporte.fecha_inicio', 'reporte.fecha_fin']],
      ['General', ['timeout_minutos']],
    ],
  );
});

test('the form filled from the example gives the example back', (t) => {
  t.deepEqual(bodyOf(fields, valuesOf(fields, example)), example);
});

test('an optional field left empty is left out; a required one is sent empty for the server to name', (t) => {
  const values = { ...valuesOf(fields, example), 'campana.descripcion': '', 'pago.referencia_pago': '' };
  const body = bodyOf(fields, values) as { campana: Record<string, unknown>; pago: Record<string, unknown> };
  t.false('descripcion' in body.campana);
  t.is(body.pago.referencia_pago, '');
});

test('numbers are sent as numbers, and what does not parse as typed', (t) => {
  const body = bodyOf(fields, { ...valuesOf(fields, example), 'pago.monto': '250.5', 'campana.presupuesto.monto': 'mil' }) as {
    pago: { monto: unknown };
    campana: { presupuesto: { monto: unknown } };
  };
  t.is(body.pago.monto, 250.5);
  t.is(body.campana.presupuesto.monto, 'mil');
});

test('a record is edited as JSON, and suggestions come from the schema', (t) => {
  const filtros = fields.find((f) => f.name === 'reporte.filtros');
  t.is(filtros?.kind, 'json');
  const body = bodyOf(fields, { ...valuesOf(fields, example), 'reporte.filtros': '{"region":"norte"}' }) as { reporte: { filtros: unknown } };
  t.deepEqual(body.reporte.filtros, { region: 'norte' });
  t.true(fields.find((f) => f.name === 'reporte.tipo_reporte')!.suggestions.includes('conversiones'));
});
