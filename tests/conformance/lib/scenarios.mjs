// Phase B scenarios: what a user of the gateway would notice, driven through the
// bundle on Pyodide with Node's native Request, Durable Object RPC through the SDK.
import assert from 'node:assert/strict';
import net from 'node:net';
import { edgeRequest } from './worker_host.mjs';

const BASE = 'https://tollgate.example';

function rateLimitHeaders(response) {
  const names = [...response.headers.keys()];
  return names.filter((n) => n === 'ratelimit' || n === 'ratelimit-policy' || n.startsWith('ratelimit'));
}

async function problem(response, status) {
  assert.equal(response.status, status, `status ${response.status}, wanted ${status}`);
  const type = response.headers.get('content-type') ?? '';
  assert.ok(type.startsWith('application/problem+json'), `content-type ${type}`);
  const body = JSON.parse(await response.text());
  assert.equal(body.status, status, `problem body status ${body.status}`);
  assert.ok(typeof body.title === 'string' && body.title.length > 0, 'problem body has a title');
  assert.ok(!JSON.stringify(body).includes('Traceback'), 'no traceback in the body');
  return body;
}

/** The shipped TOLLGATE config with every rule replaced by one tight limit. */
export function tightConfig(base) {
  return { ...structuredClone(base), rules: [{ name: 'tight', limit: '2/minute' }], overrides: {}, costs: {} };
}

export async function scenarios({ host, origin, results, say }) {
  const admitted = { gateway: 0 };
  const adminToken = host.env.ADMIN_TOKEN;

  await results.check('allowed request is forwarded to the origin (method, path, query, body, headers)', async () => {
    const before = origin.received.length;
    const body = JSON.stringify({ q: 'cats', n: 2 });
    const response = await host.fetch(edgeRequest(`${BASE}/v1/search?q=cats&page=2`, {
      method: 'POST', body,
      headers: { 'x-api-key': 'conf-forward', 'content-type': 'application/json', 'x-custom-header': 'kept', 'tollgate-unchecked': 'forged' },
    }));
    assert.equal(origin.received.length, before + 1, 'origin received exactly one request');
    const seen = origin.received.at(-1);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/v1/search?q=cats&page=2');
    assert.equal(seen.body, body);
    assert.equal(seen.headers['x-custom-header'], 'kept');
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers['tollgate-unchecked'], undefined, 'a client-sent Tollgate-* header is dropped');
    assert.equal(response.status, 201, `status ${response.status}: ${await response.clone().text()}`);
    assert.equal(response.headers.get('x-origin'), 'conformance', 'origin headers come back');
    const echo = JSON.parse(await response.text());
    assert.equal(echo.echo.body, body, 'origin body comes back');
    const rl = rateLimitHeaders(response);
    assert.ok(rl.length >= 2, `RateLimit headers on the forwarded response: ${rl}`);
    admitted.gateway += 1;
    return `201 from origin, ${rl.map((n) => `${n}: ${response.headers.get(n)}`).join('; ')}`;
  });

  await results.check('denied request answers 429 with Retry-After, RateLimit headers and problem+json', async () => {
    const env = host.envWith({ TOLLGATE: tightConfig(host.env.TOLLGATE) });
    const before = origin.received.length;
    const statuses = [];
    let last;
    for (let i = 0; i < 3; i++) {
      last = await host.fetch(edgeRequest(`${BASE}/v1/items`, { headers: { 'x-api-key': 'conf-denied' } }), env);
      statuses.push(last.status);
      if (i < 2) await last.arrayBuffer();
    }
    assert.deepEqual(statuses.slice(0, 2), [201, 201], `first two admitted: ${statuses}`);
    assert.equal(origin.received.length, before + 2, 'the denied request never reached the origin');
    const retryAfter = last.headers.get('retry-after');
    assert.match(retryAfter ?? '', /^[1-9][0-9]*$/, `Retry-After ${retryAfter}`);
    assert.ok(Number(retryAfter) <= 60, `Retry-After ${retryAfter} within the 1-minute window`);
    const rl = rateLimitHeaders(last);
    assert.ok(rl.length >= 2, `RateLimit headers on the 429: ${rl}`);
    const body = await problem(last, 429);
    return `429, Retry-After ${retryAfter}, "${body.title}"`;
  });

  await results.check('a high-rate GCRA rule (6000/hour, burst 2) still limits on the edge', async () => {
    // GCRA state is the arrival time scaled by the count (ms x 6000 > 2^53). Python ints
    // above 2^53 become JS BigInt, which workerd's SqlStorage cannot bind (its bindings are
    // null | string | number-as-double | ArrayBuffer, sql.c++), and INTEGERs above 2^53 come
    // back as lossy doubles. A bucket that cannot store its state fails open: no limit at all.
    const env = host.envWith({
      TOLLGATE: { ...structuredClone(host.env.TOLLGATE), rules: [{ name: 'hot', limit: '6000/hour', burst: 2 }], overrides: {}, costs: {} },
    });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const r = await host.fetch(edgeRequest(`${BASE}/__tollgate/allow`, { headers: { 'x-api-key': 'conf-hot' } }), env);
      statuses.push(r.status);
      await r.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 429], `statuses ${statuses}`);
    return statuses.join(', ');
  });

  await results.check('/__tollgate/allow answers the decision alone', async () => {
    const before = origin.received.length;
    const response = await host.fetch(edgeRequest(`${BASE}/__tollgate/allow`, { headers: { 'x-api-key': 'conf-allow' } }));
    const text = await response.text();
    assert.equal(response.status, 200, `status ${response.status}: ${text}`);
    assert.equal(origin.received.length, before, 'origin not contacted');
    assert.ok((response.headers.get('content-type') ?? '').includes('json'), 'JSON body');
    JSON.parse(text);
    const rl = rateLimitHeaders(response);
    assert.ok(rl.length >= 2, `RateLimit headers: ${rl}`);
    return `200 ${text.slice(0, 120)}`;
  });

  await results.check('a bad identity answers 400 problem+json', async () => {
    const response = await host.fetch(edgeRequest(`${BASE}/v1/items`, { headers: { 'x-api-key': 'x'.repeat(5000) } }));
    const body = await problem(response, 400);
    return `400 "${body.title}": ${body.detail ?? ''}`.slice(0, 200);
  });

  await results.check('admin API: GET and DELETE need ADMIN_TOKEN, show and reset a client', async () => {
    const url = `${BASE}/__tollgate/admin/clients/key:conf-forward`;
    const anonymous = await host.fetch(edgeRequest(url));
    assert.ok([401, 403].includes(anonymous.status), `without a token: ${anonymous.status}`);
    await problem(anonymous, anonymous.status);
    const auth = { authorization: `Bearer ${adminToken}` };
    const shown = await host.fetch(edgeRequest(url, { headers: auth }));
    const shownText = await shown.text();
    assert.equal(shown.status, 200, `GET: ${shown.status} ${shownText}`);
    const state = JSON.parse(shownText);
    assert.ok(JSON.stringify(state).includes('burst'), `GET shows the burst rule: ${shownText.slice(0, 200)}`);
    const reset = await host.fetch(edgeRequest(url, { method: 'DELETE', headers: auth }));
    const resetText = await reset.text();
    assert.ok([200, 204].includes(reset.status), `DELETE: ${reset.status} ${resetText}`);
    const wrong = await host.fetch(edgeRequest(url, { method: 'DELETE', headers: { authorization: 'Bearer wrong' } }));
    assert.ok([401, 403].includes(wrong.status), `DELETE with a wrong token: ${wrong.status}`);
    await wrong.arrayBuffer();
    return `GET 200, DELETE ${reset.status}, no token ${anonymous.status}`;
  });

  await results.check('an unreachable origin answers 502 problem+json (Node fetch error through pyfetch)', async () => {
    const closed = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    });
    const env = host.envWith({ ORIGIN_URL: `http://127.0.0.1:${closed}` });
    const response = await host.fetch(edgeRequest(`${BASE}/v1/items`, { headers: { 'x-api-key': 'conf-502' } }), env);
    const body = await problem(response, 502);
    return `502 "${body.title}"`;
  });

  await results.check('a slow origin answers 504 after ORIGIN_TIMEOUT_MS (asyncio.wait_for on Pyodide)', async () => {
    const env = host.envWith({ ORIGIN_TIMEOUT_MS: '200' });
    const started = performance.now();
    const response = await host.fetch(edgeRequest(`${BASE}/slow/3000`, { headers: { 'x-api-key': 'conf-504' } }), env);
    const waited = performance.now() - started;
    const body = await problem(response, 504);
    assert.ok(waited < 2500, `answered after ${waited.toFixed(0)} ms, not at the timeout`);
    return `504 "${body.title}" after ${waited.toFixed(0)} ms`;
  });

  await results.check('/__tollgate/allow takes Tollgate-Cost only with Tollgate-Allow-Token', async () => {
    const ask = async (key, headers) => {
      const r = await host.fetch(edgeRequest(`${BASE}/__tollgate/allow`, { headers: { 'x-api-key': key, ...headers } }));
      return { status: r.status, ratelimit: r.headers.get('ratelimit') ?? '', body: await r.text() };
    };
    const paid = await ask('conf-cost', { 'tollgate-cost': '5', 'tollgate-allow-token': host.env.ALLOW_TOKEN });
    assert.equal(paid.status, 200, `with the token: ${paid.status} ${paid.body}`);
    assert.match(paid.ratelimit, /"burst";r=35\b/, `cost 5 of a 40 burst: ${paid.ratelimit}`);
    const forged = await ask('conf-cost-forged', { 'tollgate-cost': '5', 'tollgate-allow-token': 'wrong' });
    assert.ok(!/"burst";r=35\b/.test(forged.ratelimit), `a wrong token must not set the cost: ${forged.status} ${forged.ratelimit}`);
    return `token: ${paid.ratelimit}; wrong token: ${forged.status}`;
  });

  await results.check('cron flush: alarms push usage to the outbox, scheduled() writes it to D1', async () => {
    const alarms = await host.objects.runAlarms(); // every pending alarm, as if its time had come
    const failedAlarms = alarms.filter((a) => !a.ok);
    assert.equal(failedAlarms.length, 0, `alarms failed: ${failedAlarms.map((a) => `${a.key}: ${a.error.message}`).join('\n')}`);
    assert.ok(alarms.length > 0, 'decisions set alarms');
    await host.scheduled(host.project.crons?.[0] ?? '*/5 * * * *');
    const db = host.d1.USAGE_DB?.db;
    assert.ok(db, 'a D1 binding USAGE_DB');
    const rows = db._rows('SELECT rule, allowed, admitted, denied FROM usage ORDER BY rule');
    assert.ok(rows.length > 0, 'usage rows in D1');
    const sum = (rule, col) => rows.filter((r) => r.rule === rule).reduce((n, r) => n + r[col], 0);
    assert.equal(sum('tight', 'allowed'), 2, `tight allowed ${sum('tight', 'allowed')}`);
    assert.equal(sum('tight', 'denied'), 1, `tight denied ${sum('tight', 'denied')}`);
    assert.ok(sum('burst', 'allowed') >= admitted.gateway, `burst allowed ${sum('burst', 'allowed')}`);
    return `${alarms.length} alarms, ${rows.length} usage rows in D1`;
  });

  await results.check('/__tollgate/metrics after the flush shows the D1 totals', async () => {
    const url = `${BASE}/__tollgate/metrics`;
    const response = await host.fetch(edgeRequest(url, { headers: { authorization: `Bearer ${adminToken}` } }));
    const text = await response.text();
    assert.equal(response.status, 200, `status ${response.status}: ${text.slice(0, 200)}`);
    const line = text.split('\n').find((l) => l.startsWith('tollgate_decisions_total{') && l.includes('rule="tight"') && l.includes('result="denied"'));
    assert.ok(line && line.trim().endsWith(' 1'), `denied total for rule "tight": ${line}`);
    return line;
  });
}

