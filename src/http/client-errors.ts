// Requests that Node's HTTP parser refuses before any Koa code runs (headers
// over the size limit, a malformed request line) are answered in JSON like
// every other error, instead of Node's bare text status line.
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody } from './errors.js';

/** What to answer for a parser error code. */
export function clientErrorAnswer(code: string | undefined): { status: number; error: string; detalle: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, error: 'cabeceras_demasiado_grandes', detalle: 'Las cabeceras de la solicitud superan el tamaño máximo' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, error: 'tiempo_agotado', detalle: 'La solicitud no llegó completa a tiempo' };
    default:
      return { status: 400, error: 'solicitud_invalida', detalle: 'La solicitud HTTP no es válida' };
  }
}

export function jsonClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset connection, or one already answered, has nobody to tell.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, error, detalle } = clientErrorAnswer(err.code);
    const body = JSON.stringify(errorBody(error, detalle));
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}
