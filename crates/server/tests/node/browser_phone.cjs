// A headless Chromium page publishes a tone (Chromium's fake microphone reads a WAV file)
// through the demo page, waits for the phone's stream to arrive, and measures what it
// receives from the phone with WebAudio: the power at each asked-for frequency, every 100 ms
// for <secs> seconds (default 4). Prints one JSON line: {"phone": <connection data>,
// "power": {"700": <mean>, …}, "timeline": [{"700": <power>, …}, …]}.
// The page then stays in the session for <stay> seconds, still publishing, before it leaves.
// Usage: node browser_phone.cjs <server url> <secret> <session> <tone.wav> <freq,freq…> <stay> [secs]
'use strict';
const browserKit = require('./browser.cjs');

const [url, secret, session, wav, freqs, stay, secs] = process.argv.slice(2);

async function main() {
  const browser = await browserKit.launch([`--use-file-for-fake-audio-capture=${wav}`]);
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.error('page error', e));
    await page.goto(`${url}/?session=${session}&name=Interviewer&secret=${secret}&publish=1&join=1`);
    await browserKit.waitFor(page, 'publishing', (ev) => ev.includes('publishing') || ev.some((e) => e.startsWith('cannot')), 20000);
    console.error('browser: publishing');
    // The phone's stream: its connection is the one of type SIP (platform SIP).
    await browserKit.waitFor(page, "the phone's stream", (ev) => ev.some((e) => e.startsWith('playing')), 60000);
    console.error('browser: playing the phone');
    const result = await page.evaluate(async ([freqs, windows]) => {
      const sub = window.pbApp.subscribers[window.pbApp.subscribers.length - 1];
      const ctx = new AudioContext();
      await ctx.resume();
      const src = ctx.createMediaStreamSource(sub.stream.getMediaStream());
      const an = ctx.createAnalyser();
      an.fftSize = 8192;
      an.smoothingTimeConstant = 0;
      src.connect(an);
      const bins = new Float32Array(an.frequencyBinCount);
      const hz = ctx.sampleRate / an.fftSize;
      const sum = Object.fromEntries(freqs.map((f) => [f, 0]));
      const timeline = [];
      let n = 0;
      for (let i = 0; i < windows; i++) {
        await new Promise((r) => setTimeout(r, 100));
        an.getFloatFrequencyData(bins);
        const at = {};
        for (const f of freqs) {
          // The strongest bin within ±20 Hz, in linear power.
          let best = -Infinity;
          for (let b = Math.floor((f - 20) / hz); b <= Math.ceil((f + 20) / hz); b++) best = Math.max(best, bins[b]);
          at[f] = Math.pow(10, best / 10);
          sum[f] += at[f];
        }
        timeline.push(at);
        n++;
      }
      const power = Object.fromEntries(freqs.map((f) => [f, sum[f] / n]));
      return { phone: sub.stream.connection.data, power, timeline };
    }, [freqs.split(',').map(Number), Math.round(Number(secs || 4) * 10)]);
    console.log(JSON.stringify(result));
    await new Promise((r) => setTimeout(r, Number(stay || 0) * 1000));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
