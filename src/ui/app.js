// The panel's shell: navigation by the URL's hash, the token and its role
// (GET /auth/yo), and the page for the current route. Pages read again when
// the session changes: with AUTH_CONTRATO=on every read needs the token.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api, errorText, token } from './api.js';
import { ListPage } from './list.js';
import { SagaPage } from './saga.js';
import { StatsPage } from './stats.js';
import { CreatePage } from './create.js';
import { BulkPage } from './bulk.js';
import { DefinitionsPage } from './definitions.js';

function currentRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const saga = hash.match(/^\/saga\/([0-9a-fA-F-]{36})$/);
  if (saga) return { page: 'saga', id: saga[1] };
  if (hash === '/estadisticas') return { page: 'estadisticas' };
  if (hash === '/crear') return { page: 'crear' };
  if (hash === '/lote') return { page: 'lote' };
  if (hash === '/definiciones') return { page: 'definiciones' };
  return { page: 'lista' };
}

/** The token box: who is acting, and so which buttons are enabled. */
function Session({ session, setSession }) {
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState('');
  const login = async (e) => {
    e.preventDefault();
    token.set(value.trim());
    const res = await api('GET', '/auth/yo');
    if (res.ok) {
      setSession(res.data);
      setProblem('');
      setValue('');
    } else {
      token.set('');
      setSession(null);
      setProblem(res.status === 404 ? 'La API de operación no está disponible en este servidor' : errorText(res));
    }
  };
  const logout = () => {
    token.set('');
    setSession(null);
  };
  if (session) {
    return html`<div class="session" data-testid="sesion">
      <span>${session.nombre} · <strong data-rol=${session.rol}>${session.rol}</strong></span>
      <button type="button" class="link" onClick=${logout}>Salir</button>
    </div>`;
  }
  return html`<form class="session" onSubmit=${login}>
    <input type="password" name="token" placeholder="Token (npm run token)" aria-label="Token" value=${value}
      onInput=${(e) => setValue(e.target.value)} />
    <button type="submit" disabled=${value.trim() === ''}>Entrar</button>
    ${problem && html`<span class="error" role="alert">${problem}</span>`}
  </form>`;
}

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [session, setSession] = useState(null);
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  // A token kept from earlier in this tab is checked again.
  useEffect(() => {
    if (token.get() === '') return;
    void api('GET', '/auth/yo').then((res) => (res.ok ? setSession(res.data) : token.set('')));
  }, []);
  const nav = (page, href, text) => html`<a href=${href} class=${route.page === page ? 'active' : ''}>${text}</a>`;
  let content;
  if (route.page === 'saga') content = html`<${SagaPage} id=${route.id} session=${session} />`;
  else if (route.page === 'estadisticas') content = html`<${StatsPage} session=${session} />`;
  else if (route.page === 'crear') content = html`<${CreatePage} />`;
  else if (route.page === 'lote') content = html`<${BulkPage} session=${session} />`;
  else if (route.page === 'definiciones') content = html`<${DefinitionsPage} session=${session} />`;
  else content = html`<${ListPage} session=${session} />`;
  return html`
    <header class="top">
      <h1><a href="#/">Aeropartners SAGA</a></h1>
      <nav>
        ${nav('lista', '#/', 'SAGAs')} ${nav('estadisticas', '#/estadisticas', 'Estadísticas')}
        ${nav('crear', '#/crear', 'Nueva SAGA')} ${nav('lote', '#/lote', 'Acciones en lote')}
        ${nav('definiciones', '#/definiciones', 'Definiciones')}
        <a href="/docs" target="_blank" rel="noopener">API</a>
      </nav>
      <${Session} session=${session} setSession=${setSession} />
    </header>
    <main>${content}</main>
  `;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
