// The phonebridge demo page: join a session by name with openvidu-browser, publish camera and
// microphone, and see everyone else. Tokens come from the REST API with the server secret the
// visitor types (the page talks to the server it was loaded from).
'use strict';

const state = { session: null, publisher: null, subscribers: [], events: [] };
window.pbApp = state;

function log(text) {
  state.events.push(text);
  const li = document.createElement('li');
  li.textContent = new Date().toLocaleTimeString() + '  ' + text;
  document.getElementById('log').prepend(li);
}

async function api(secret, method, path, body) {
  const res = await fetch('/openvidu/api' + path, {
    method,
    headers: { Authorization: 'Basic ' + btoa('OPENVIDUAPP:' + secret), 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return res;
}

async function token(sessionName, secret) {
  const created = await api(secret, 'POST', '/sessions', { customSessionId: sessionName });
  if (created.status === 401) throw new Error('wrong server secret');
  if (created.status !== 200 && created.status !== 409) throw new Error('cannot create the session (' + created.status + ')');
  const conn = await api(secret, 'POST', '/sessions/' + encodeURIComponent(sessionName) + '/connection', {});
  if (conn.status !== 200) throw new Error('cannot create a connection (' + conn.status + ')');
  return (await conn.json()).token;
}

function tile(name) {
  const fig = document.createElement('figure');
  const cap = document.createElement('figcaption');
  cap.textContent = name;
  fig.appendChild(cap);
  document.getElementById('videos').appendChild(fig);
  return fig;
}

function nameOf(connection) {
  try {
    return JSON.parse(connection.data.split('%/%')[0]).clientData;
  } catch (_) {
    return connection.data || connection.connectionId;
  }
}

async function join(form) {
  const sessionName = form.session.value.trim();
  const name = form.name.value.trim();
  const secret = form.secret.value;
  const OV = new OpenVidu();
  OV.enableProdMode();
  // No public STUN servers: the server is reached directly (ICE-lite).
  OV.setAdvancedConfiguration({ iceServers: [] });
  const session = OV.initSession();
  state.session = session;
  session.on('connectionCreated', (e) => log('connection ' + nameOf(e.connection) + (e.connection.connectionId === session.connection?.connectionId ? ' (you)' : '')));
  session.on('connectionDestroyed', (e) => log('left: ' + nameOf(e.connection) + ' (' + e.reason + ')'));
  session.on('streamCreated', (e) => {
    log('stream from ' + nameOf(e.stream.connection));
    const fig = tile(nameOf(e.stream.connection));
    const sub = session.subscribe(e.stream, fig, { insertMode: 'APPEND' });
    state.subscribers.push(sub);
    sub.on('streamPlaying', () => log('playing ' + nameOf(e.stream.connection)));
  });
  session.on('streamDestroyed', (e) => log('stream ended: ' + nameOf(e.stream.connection) + ' (' + e.reason + ')'));
  session.on('signal', (e) => log('signal ' + e.type + ': ' + e.data));
  session.on('reconnecting', () => log('reconnecting'));
  session.on('reconnected', () => log('reconnected'));
  session.on('sessionDisconnected', (e) => {
    log('disconnected (' + e.reason + ')');
    document.getElementById('room').hidden = true;
    document.getElementById('join').hidden = false;
    document.getElementById('videos').innerHTML = '';
  });
  session.on('exception', (e) => log('exception ' + e.name + ': ' + e.message));
  const t = await token(sessionName, secret);
  await session.connect(t, { clientData: name });
  document.getElementById('join').hidden = true;
  document.getElementById('room').hidden = false;
  document.getElementById('title').textContent = 'Session ' + sessionName + ' as ' + name;
  log('joined as ' + session.connection.connectionId);
  if (form.publish.checked) {
    const fig = tile(name + ' (you)');
    const publisher = OV.initPublisher(fig, { insertMode: 'APPEND', mirror: true });
    state.publisher = publisher;
    try {
      await session.publish(publisher);
      log('publishing');
    } catch (e) {
      log('cannot publish: ' + (e.message || e));
    }
  }
}

document.getElementById('join').addEventListener('submit', (ev) => {
  ev.preventDefault();
  join(ev.target).catch((e) => log('cannot join: ' + (e.message || e)));
});
document.getElementById('leave').addEventListener('click', () => state.session && state.session.disconnect());

// ?session=&name=&secret=&publish=0|1&join=1 fills the form (and joins).
const params = new URLSearchParams(location.search);
const form = document.getElementById('join');
for (const k of ['session', 'name', 'secret']) if (params.has(k)) form[k].value = params.get(k);
if (params.has('publish')) form.publish.checked = params.get('publish') === '1';
if (params.get('join') === '1') form.requestSubmit();
