// The states this saga's steps reach, spelled exactly as the clients read them.
export const Estado = {
  CAMPANA_CREADA: 'CAMPAÑA_CREADA',
  PAGO_PROCESADO: 'PAGO_PROCESADO',
  REPORTE_GENERADO: 'REPORTE_GENERADO',
} as const;
