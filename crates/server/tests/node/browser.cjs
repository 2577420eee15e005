// What the browser tests share: Debian's headless Chromium driven by playwright-core, with
// fake camera and microphone, and waiting on the demo page's event log (window.pbApp.events).
'use strict';
const path = require('node:path');
const web = process.env.PB_WEB || path.join(__dirname, '../../../../web');
const { chromium } = require(path.join(web, 'node_modules/playwright-core'));

// playwright gives every launch a fresh, empty profile.
// `extraArgs` adds Chromium flags (e.g. a WAV file as the fake microphone).
function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required', ...extraArgs],
  });
}

async function events(page) {
  return page.evaluate(() => window.pbApp.events.slice());
}

// Polls the page's events every 100 ms until `predicate` holds; fails after `ms`.
async function waitFor(page, what, predicate, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const ev = await events(page);
    if (predicate(ev)) return ev;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(ev)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

module.exports = { launch, events, waitFor };
