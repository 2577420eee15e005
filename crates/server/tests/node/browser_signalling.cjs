// Two headless Chromium pages (Debian's chromium, driven by playwright-core) join one session
// through the demo page and openvidu-browser 2.32.2, then: a signal from one to the other, a
// WebSocket drop and reconnection, an eviction by REST, and the session closed by REST.
// Usage: node browser_signalling.cjs <server url> <secret>
'use strict';
const assert = require('node:assert/strict');
const browserKit = require('./browser.cjs');
const { events } = browserKit;

const [url, secret] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from(`OPENVIDUAPP:${secret}`).toString('base64');
const api = (method, p, body) =>
  fetch(url + '/openvidu/api' + p, { method, headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });

const waitFor = (page, what, predicate, ms = 15000) => browserKit.waitFor(page, what, predicate, ms);

async function main() {
  const browser = await browserKit.launch();
  try {
    const ctx = await browser.newContext();
    const open = async (name) => {
      const page = await ctx.newPage();
      page.on('pageerror', (e) => console.error(`[${name}] page error`, e));
      await page.goto(`${url}/?session=signalling&name=${name}&secret=${secret}&publish=0&join=1`);
      await waitFor(page, `${name} to join`, (ev) => ev.some((e) => e.startsWith('joined as con_')));
      return page;
    };
    const alice = await open('Alice');
    const bob = await open('Bob');
    await waitFor(alice, 'Bob to appear', (ev) => ev.includes('connection Bob'));
    let ev = await events(bob);
    assert.ok(ev.includes('connection Alice'), 'Bob sees Alice from joinRoom: ' + JSON.stringify(ev));
    assert.ok(ev.includes('connection Bob (you)'));

    // REST sees two active connections with their client data.
    const s = await (await api('GET', '/sessions/signalling')).json();
    const active = s.connections.content.filter((c) => c.status === 'active');
    assert.equal(active.length, 2);
    const bobId = await bob.evaluate(() => window.pbApp.session.connection.connectionId);
    assert.ok(active.some((c) => c.connectionId === bobId && c.platform.includes('Chrome')));

    // A signal from Alice to Bob.
    await alice.evaluate((to) => {
      const s = window.pbApp.session;
      const target = s.remoteConnections.get(to);
      return s.signal({ to: [target], type: 'chat', data: 'hello Bob' });
    }, bobId);
    await waitFor(bob, 'the signal', (ev) => ev.includes('signal signal:chat: hello Bob'));

    // The WebSocket drops: openvidu-browser reconnects within the grace period and stays in.
    await bob.evaluate(() => window.pbApp.session.openvidu.jsonRpcClient.reconnect());
    await waitFor(bob, 'the reconnection', (ev) => ev.includes('reconnected'), 20000);
    ev = await events(alice);
    assert.ok(!ev.some((e) => e.startsWith('left: Bob')), 'Bob never left: ' + JSON.stringify(ev));

    // Evicted by REST.
    assert.equal((await api('DELETE', `/sessions/signalling/connection/${bobId}`)).status, 204);
    await waitFor(bob, 'the eviction', (ev) => ev.includes('disconnected (forceDisconnectByServer)'));
    await waitFor(alice, 'Bob leaving', (ev) => ev.includes('left: Bob (forceDisconnectByServer)'));

    // The session is closed by REST.
    assert.equal((await api('DELETE', '/sessions/signalling')).status, 204);
    await waitFor(alice, 'the close', (ev) => ev.includes('disconnected (sessionClosedByServer)'));
    console.log(JSON.stringify({ ok: true }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
