// Drives phonebridge's REST API with the real openvidu-node-client (pinned in web/) and checks
// every object it gets back. Usage: node rest_client.cjs <server url> <secret>
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const web = process.env.PB_WEB || path.join(__dirname, '../../../../web');
const { OpenVidu, OpenViduRole } = require(path.join(web, 'node_modules/openvidu-node-client'));

const [url, secret] = process.argv.slice(2);

async function rejects(promise, status, what) {
  await assert.rejects(promise, (e) => e.message === status, what);
}

async function main() {
  const ov = new OpenVidu(url, secret);
  const host = new URL(url).host;

  // A session with a custom id, then the same id again: the 409 path resolves to it.
  const s1 = await ov.createSession({ customSessionId: 'interview-1', forcedVideoCodec: 'VP8' });
  assert.equal(s1.sessionId, 'interview-1');
  assert.equal(s1.properties.customSessionId, 'interview-1');
  assert.equal(s1.properties.forcedVideoCodec, 'VP8');
  assert.ok(s1.createdAt > 1.6e12, 'createdAt is epoch ms');
  const again = await ov.createSession({ customSessionId: 'interview-1' });
  assert.equal(again.sessionId, 'interview-1');
  assert.equal(again.createdAt, s1.createdAt);

  // A generated id.
  const s2 = await ov.createSession();
  assert.match(s2.sessionId, /^ses_[A-Z][A-Za-z0-9]{9}$/);

  // Connections (tokens) with role, data and record.
  const c1 = await s1.createConnection({ role: OpenViduRole.MODERATOR, data: 'alice', record: false });
  assert.match(c1.connectionId, /^con_[A-Z][A-Za-z0-9]{9}$/);
  assert.equal(c1.status, 'pending');
  assert.equal(c1.connectionProperties.role, 'MODERATOR');
  assert.equal(c1.connectionProperties.data, 'alice');
  assert.equal(c1.connectionProperties.record, false);
  assert.equal(c1.connectionProperties.type, 'WEBRTC');
  assert.ok(c1.token.startsWith(`ws://${host}?sessionId=interview-1&token=tok_`), c1.token);
  const c2 = await s1.createConnection();
  assert.equal(c2.connectionProperties.role, 'PUBLISHER');
  assert.notEqual(c2.token, c1.token);

  // The deprecated token endpoint.
  const token = await s2.generateToken({ role: OpenViduRole.SUBSCRIBER, data: 'bob' });
  assert.ok(token.startsWith(`ws://${host}?sessionId=${s2.sessionId}&token=tok_`), token);

  // Fetching sees the pending connections.
  const changed = await s1.fetch();
  assert.equal(typeof changed, 'boolean');
  assert.equal(s1.connections.length, 2);
  assert.deepEqual(s1.connections.map((c) => c.connectionId).sort(), [c1.connectionId, c2.connectionId].sort());
  assert.equal(s1.activeConnections.length, 0);
  await ov.fetch();
  // The client keeps one object per createSession call, also for the 409 path: compare ids.
  const ids = () => [...new Set(ov.activeSessions.map((s) => s.sessionId))].sort();
  assert.deepEqual(ids(), ['interview-1', s2.sessionId].sort());

  // Removing a pending connection.
  await s1.forceDisconnect(c2);
  await s1.fetch();
  assert.deepEqual(s1.connections.map((c) => c.connectionId), [c1.connectionId]);
  await rejects(s1.forceDisconnect('con_Missing0000'), '404', 'unknown connection');

  // Signals need someone to receive them; unknown sessions are 404.
  const auth = 'Basic ' + Buffer.from(`OPENVIDUAPP:${secret}`).toString('base64');
  const signal = (body) =>
    fetch(`${url}/openvidu/api/signal`, {
      method: 'POST',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  assert.equal((await signal({ session: 'interview-1', type: 'signal:chat', data: 'hi' })).status, 406);
  assert.equal((await signal({ session: 'nope', data: 'hi' })).status, 404);
  assert.equal((await signal({ session: 'interview-1', to: 'x' })).status, 400);

  // What phonebridge does not do is refused plainly.
  await rejects(ov.startRecording('interview-1'), '501', 'recording');
  await rejects(ov.listRecordings(), '501', 'recordings');

  // Bad input and bad credentials.
  await rejects(ov.createSession({ customSessionId: 'bad id!' }), '400', 'custom id');
  await rejects(s1.createConnection({ role: 'ADMIN' }), '400', 'role');
  await rejects(new OpenVidu(url, 'wrong').createSession(), '401', 'secret');

  // Closing.
  await s1.close();
  await ov.fetch();
  assert.deepEqual(ids(), [s2.sessionId]);
  await rejects(s1.close(), '404', 'closed twice');
  const gone = await fetch(`${url}/openvidu/api/sessions/interview-1`, { headers: { Authorization: auth } });
  assert.equal(gone.status, 404);

  // CORS: a preflight from any origin is allowed.
  const pre = await fetch(`${url}/openvidu/api/sessions`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
  });
  assert.equal(pre.status, 200);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
  console.log(JSON.stringify({ ok: true, sessions: [s1.sessionId, s2.sessionId] }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
