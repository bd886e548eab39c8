// A local origin for forwarded requests: a Node http server on 127.0.0.1, port 0,
// that records every request it receives and echoes it back as JSON; `/slow/<ms>` answers
// only after <ms> milliseconds.
import http from 'node:http';

export async function startOrigin() {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const slow = /^\/slow\/(\d+)/.exec(req.url);
      if (slow) await new Promise((resolve) => setTimeout(resolve, Number(slow[1])));
      if (res.destroyed) return;
      const body = Buffer.concat(chunks).toString('utf8');
      const entry = { method: req.method, url: req.url, headers: req.headers, body };
      received.push(entry);
      const payload = JSON.stringify({ echo: entry });
      res.writeHead(201, {
        'content-type': 'application/json',
        'x-origin': 'conformance',
        'content-length': Buffer.byteLength(payload),
      });
      res.end(payload);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}
