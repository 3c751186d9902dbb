// The dashboard page (php/resources/dashboard) in a real headless chromium,
// served with its SSE stream by the Echo connector tests' fake sidecar
// (page-server.mjs extends ../echo-sse/fake-sidecar.mjs). Every test fails on
// a console error or warning, an uncaught exception, a failed request or any
// request to another origin, unless it names the failure it causes itself.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, stats, waitForStats, watchedPage } from './browser.mjs';
import { PageSidecar, windowPayload } from './page-server.mjs';
import { sleep, waitFor } from '../echo-sse/fake-sidecar.mjs';

const TAGS = {
  tags: [
    { tag: 'TT-101', label: 'Reactor temperature', unit: '°C', area: 'Reactor', lo: 20, hi: 180 },
    { tag: 'PT-201', label: 'Header pressure', unit: 'bar', area: 'Utilities', lo: 1, hi: 8 },
  ],
};

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function open(t, query = 'channels=plant-live,alarms-plant', setup = () => {}) {
  const sidecar = await new PageSidecar().start();
  setup(sidecar);
  const { page, problems } = await watchedPage(browser, sidecar.base);
  t.after(async () => {
    await page.close();
    await sidecar.stop();
  });
  await page.goto(`${sidecar.base}/dashboard/index.html?${query}`);
  return { sidecar, page, problems };
}

/** allowFailed: the failures the test causes itself (chromium also logs them on the console). */
function assertClean(problems, allowFailed = () => false) {
  assert.deepEqual(problems.foreign, [], 'requests to other origins');
  assert.deepEqual(problems.page, [], 'uncaught exceptions');
  assert.deepEqual(problems.console.filter((m) => !(m.startsWith('error: Failed to load resource') && allowFailed(m))), [], 'console errors and warnings');
  assert.deepEqual(problems.failed.filter((f) => !allowFailed(f)), [], 'failed requests');
}

const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

describe('dashboard over SSE', () => {
  test('shows the last value and unit at once on load, then draws every live window with its min/max band and average', async (t) => {
    const started = Date.now();
    const { sidecar, page, problems } = await open(t, 'channels=plant-live,alarms-plant', (s) => {
      // What the sidecar replays on connect: the last event per (channel, event).
      s.add('plant-live', 'scada.tags', TAGS);
      s.add('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'TT-101': [171.5, 172.25, 170.75], 'PT-201': [4.5, 4.25] }));
    });
    await page.waitForFunction(() => document.querySelector('.tag[data-tag="TT-101"] .value')?.textContent === '170.8');
    const shownAfterMs = Date.now() - started;
    assert.ok(shownAfterMs < 3000, `the last value appeared ${shownAfterMs} ms after navigation`);
    assert.equal(await text(page, '.tag[data-tag="TT-101"] .unit'), '°C');
    assert.equal(await text(page, '.tag[data-tag="TT-101"] .tag-label'), 'Reactor temperature');
    assert.equal(await text(page, '.tag[data-tag="TT-101"] .window'), 'min 170.8 · avg 171.5 · max 172.3 · n 3');
    assert.equal(await text(page, '.tag[data-tag="PT-201"] .unit'), 'bar');
    assert.deepEqual(await page.$$eval('section.area h2', (hs) => hs.map((h) => h.textContent)), ['Reactor', 'Utilities']);
    assert.equal(await text(page, '#state'), 'connected');
    assert.deepEqual(sidecar.connections.map((c) => [c.channels.join(','), c.lastEventId]), [['alarms-plant,plant-live', null]]);

    // 40 live windows, 100 ms apart.
    const sent = [];
    for (let i = 0; i < 40; i++) {
      const tt = [150 + i, 151 + i, 149 + i];
      sent.push(tt);
      sidecar.publish('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'TT-101': tt, 'PT-201': [5, 5.5] }));
      await sleep(25);
    }
    const st = await waitForStats(page, '42 events', (s) => s.events === 42);
    assert.deepEqual(st.ids, Array.from({ length: 42 }, (_, i) => String(i + 1)));
    assert.equal(st.windows, 41);
    assert.equal(st.samples, 3 + 2 + 40 * 5);
    const tt = st.series['TT-101'];
    assert.equal(tt.points, 41);
    assert.deepEqual(tt.min.slice(1), sent.map((v) => Math.min(...v)));
    assert.deepEqual(tt.max.slice(1), sent.map((v) => Math.max(...v)));
    assert.deepEqual(tt.avg.slice(1), sent.map((v) => (v[0] + v[1] + v[2]) / 3));
    assert.equal(tt.value, 149 + 39);
    await page.waitForFunction(() => document.querySelector('.tag[data-tag="TT-101"] .value').textContent === '188.0');
    // Above hi (180): the card is marked; the band and the line are drawn on a canvas per chart.
    assert.equal(await page.$eval('.tag[data-tag="TT-101"]', (el) => el.classList.contains('out-of-range')), true);
    assert.equal(await page.$eval('.tag[data-tag="PT-201"]', (el) => el.classList.contains('out-of-range')), false);
    assert.equal(await page.$$eval('.tag canvas', (c) => c.length), 2);
    assert.ok(st.eventsPerSecond > 0, 'events/s');
    assert.match(await text(page, '#rate'), /^\d+\.\d events\/s · \d+ samples\/s$/);
    assert.match(await text(page, '#since'), /^last event \d\.\d s ago$/);
    assertClean(problems);
  });

  test('after a dropped connection it resumes after the last id: every event once, none missing', async (t) => {
    const { sidecar, page, problems } = await open(t);
    await waitForStats(page, 'connected', (s) => s.state === 'connected');
    for (let i = 1; i <= 5; i++) {
      sidecar.publish('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'FT-301': [i] }));
    }
    await waitForStats(page, '5 events', (s) => s.events === 5);
    sidecar.openConnections()[0].res.socket.destroy(); // the network drops the stream
    // Sent while the page is away: the sidecar keeps them in its journal.
    for (let i = 6; i <= 12; i++) {
      sidecar.add(i % 4 === 0 ? 'alarms-plant' : 'plant-live', i % 4 === 0 ? 'scada.alarm' : 'scada.data.received',
        i % 4 === 0 ? { tag: 'FT-301', state: 'high', value: i, unit: 'm3/h', message: `flow high ${i}` } : windowPayload('plant-live', Date.now(), { 'FT-301': [i] }));
    }
    await waitFor('the second stream', () => sidecar.connections.length === 2 && sidecar.openConnections().length === 1, 10000);
    assert.equal(sidecar.connections[1].lastEventId, '5', 'resumed after the last id it showed');
    sidecar.publish('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'FT-301': [13] }));
    const st = await waitForStats(page, '13 events', (s) => s.events === 13);
    assert.deepEqual(st.ids, Array.from({ length: 13 }, (_, i) => String(i + 1)));
    assert.equal(st.duplicateIds, 0);
    assert.deepEqual(st.alarms.map((a) => a.value), [8, 12]);
    assert.equal(st.series['FT-301'].value, 13);
    assert.deepEqual(st.states, ['connecting', 'connected', 'reconnecting', 'connected']);
    assert.ok(st.errors.some((e) => e.includes('lost')), st.errors.join('\n'));
    assert.equal(await text(page, '#state'), 'connected');
    assertClean(problems, (f) => f.includes('/sse?channels='));
  });

  test('an alarm shows a toast with its message; back to normal shows a cleared one; toasts go away', async (t) => {
    const { sidecar, page, problems } = await open(t, 'channels=plant-live,alarms-plant');
    await waitForStats(page, 'connected', (s) => s.state === 'connected');
    sidecar.publish('alarms-plant', 'scada.alarm', { tag: 'LT-401', state: 'high', value: 96.2, limit: 95, unit: '%', message: 'Tank 4 level high: 96.2 % > 95 %', at: '2026-12-02T07:00:00.123456Z' });
    await page.waitForSelector('.toast-high');
    assert.equal(await text(page, '.toast-high strong'), 'LT-401 high');
    assert.match(await text(page, '.toast-high span'), /^Tank 4 level high: 96\.2 % > 95 % \(\d\d:\d\d:\d\d\)$/);
    sidecar.publish('alarms-plant', 'scada.alarm', { tag: 'LT-401', state: 'normal', value: 90, unit: '%', message: 'Tank 4 level back below 95 %' });
    await page.waitForSelector('.toast-normal');
    assert.equal(await text(page, '.toast-normal strong'), 'LT-401 back to normal');
    assert.equal(await page.$$eval('.toast', (ts) => ts.length), 2);
    sidecar.publish('alarms-plant', 'scada.alarm', { tag: 'PT-201', state: 'low', value: 0.8, unit: 'bar' });
    await page.waitForSelector('.toast-low');
    assert.match(await text(page, '.toast-low span'), /^PT-201 low: 0\.8 bar/);
    const st = await stats(page);
    assert.deepEqual(st.alarms.map((a) => [a.tag, a.state, a.channel]), [['LT-401', 'high', 'alarms-plant'], ['LT-401', 'normal', 'alarms-plant'], ['PT-201', 'low', 'alarms-plant']]);
    assert.deepEqual(Object.keys(st.series), []);
    assertClean(problems);
  });

  test('shows reconnecting when the sidecar goes away, then offline; connected again when it is back', async (t) => {
    const { sidecar, page, problems } = await open(t, 'channels=plant-live&offline_after_ms=1500');
    await waitForStats(page, 'connected', (s) => s.state === 'connected');
    sidecar.publish('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'TT-101': [20] }));
    await waitForStats(page, '1 event', (s) => s.events === 1);
    // Refuse every new stream (the sidecar restarting behind a proxy), then cut the open one.
    sidecar.script = Array.from({ length: 100 }, () => ({ refuse: 503 }));
    sidecar.openConnections()[0].res.socket.destroy();
    await waitForStats(page, 'reconnecting', (s) => s.state === 'reconnecting', 5000);
    assert.equal(await text(page, '#state'), 'reconnecting');
    await waitForStats(page, 'offline', (s) => s.state === 'offline', 5000);
    assert.equal(await text(page, '#state'), 'offline');
    assert.equal(await page.$eval('#state', (el) => el.dataset.state), 'offline');
    assert.match(await text(page, '#since'), /^last event \d+(\.\d)? s ago$/);
    assert.match(await text(page, '#last-error'), /HTTP 503|refused|lost/);
    sidecar.script = [];
    sidecar.add('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'TT-101': [21] }));
    const st = await waitForStats(page, 'connected again', (s) => s.state === 'connected' && s.events === 2, 15000);
    assert.deepEqual(st.ids, ['1', '2']);
    assert.deepEqual(st.states.slice(0, 4), ['connecting', 'connected', 'reconnecting', 'offline']);
    assert.equal(st.states.at(-1), 'connected');
    assertClean(problems, (f) => f.includes('/sse?channels='));
  });

  test('a private channel streams with a token from the token route; a refused one is named in the status bar while the others stream', async (t) => {
    const { sidecar, page, problems } = await open(t, 'channels=private-plant.1,private-plant.2,alarms-plant', (s) => {
      s.refusedChannels.add('private-plant.2');
    });
    await waitFor('a stream', () => sidecar.openConnections().length === 1, 10000);
    sidecar.publish('private-plant.1', 'scada.data.received', windowPayload('private-plant.1', Date.now(), { 'TT-9': [42, 43] }));
    await page.waitForFunction(() => document.querySelector('.tag[data-tag="TT-9"] .value')?.textContent === '43.00');
    // One stream for all channels: one token request for both private ones, refused for plant.2, then one for plant.1.
    assert.deepEqual(sidecar.tokenRequests.map((r) => r.channels.join(',')), ['private-plant.1,private-plant.2', 'private-plant.1']);
    assert.deepEqual(sidecar.connections.map((c) => [c.channels.join(','), c.envelope]), [['alarms-plant,private-plant.1', true]]);
    assert.ok(sidecar.connections[0].token?.startsWith('v1.'), 'the stream was opened with the token');
    assert.match(await text(page, '#last-error'), /private-plant\.2/);
    assert.equal(await text(page, '#state'), 'connected');
    assertClean(problems, (f) => f.includes('/broadcasting/sse-token'));
  });

  test('an event on two of the page\'s channels is shown on both, not counted as a duplicate', async (t) => {
    const { sidecar, page, problems } = await open(t, 'channels=plant-live,plant-backup');
    await waitForStats(page, 'connected', (s) => s.state === 'connected');
    sidecar.publish(['plant-live', 'plant-backup'], 'scada.data.received', windowPayload('plant-live', Date.now(), { 'TT-5': [7] }));
    sidecar.publish('plant-backup', 'scada.data.received', windowPayload('plant-backup', Date.now(), { 'TT-6': [8] }));
    const st = await waitForStats(page, '3 deliveries', (s) => s.events === 3);
    assert.equal(st.duplicateIds, 0);
    assert.deepEqual(st.ids, ['1', '2']);
    assert.deepEqual(sidecar.connections[0].sent, [1, 2], 'sent once');
    assert.equal(st.series['TT-6'].value, 8);
    assertClean(problems);
  });

  test('a session that expired (419 from the token route) shows "authorization lost, reload", not "connected"', async (t) => {
    const sidecar = await new PageSidecar({ csrf: 'a-session-this-page-no-longer-has' }).start();
    const { page, problems } = await watchedPage(browser, sidecar.base);
    t.after(async () => {
      await page.close();
      await sidecar.stop();
    });
    await page.goto(`${sidecar.base}/dashboard/index.html?channels=private-plant.1,plant-live`);
    await waitForStats(page, 'unauthorized', (s) => s.state === 'unauthorized');
    assert.equal(await text(page, '#state'), 'authorization lost, reload');
    assert.match(await text(page, '#notice'), /private-plant\.1 was refused \(HTTP 419\): reload the page/);
    // The public channel still streams, and the state stays what the user must do.
    await waitFor('the public stream', () => sidecar.openConnections().length === 1, 5000);
    sidecar.publish('plant-live', 'scada.data.received', windowPayload('plant-live', Date.now(), { 'TT-1': [1] }));
    const st = await waitForStats(page, '1 event', (s) => s.events === 1);
    assert.equal(st.state, 'unauthorized');
    assert.deepEqual(sidecar.openConnections()[0].channels, ['plant-live']);
    assertClean(problems, (f) => f.includes('/broadcasting/sse-token'));
  });

  test('a gap notice from the sidecar is shown to the user', async (t) => {
    const { page, problems } = await open(t, 'channels=plant-live', (s) => {
      s.script = [{ gap: { from: 3, to: 9, reason: 'no longer in the journal' } }];
    });
    await page.waitForSelector('#notice:not([hidden])');
    assert.equal(await text(page, '#notice'), 'Missed events on plant-live (ids 3–9): no longer in the journal; the charts continue from the next window.');
    assertClean(problems);
  });
});

describe('dashboard over pusher-js', () => {
  test('with no Pusher-protocol server listening it loads pusher-js from its own folder and shows offline', async (t) => {
    const closed = await new PageSidecar().start(); // a port with nothing behind it once stopped
    const port = Number(new URL(closed.base).port);
    await closed.stop();
    const { sidecar, page, problems } = await open(t, `mode=pusher&key=k&host=127.0.0.1&port=${port}&channels=plant-live&offline_after_ms=1000`);
    await waitForStats(page, 'offline', (s) => s.state === 'offline', 10000);
    assert.equal(await text(page, '#state'), 'offline');
    assert.equal(await text(page, '#mode'), `pusher-js 127.0.0.1:${port}`);
    assert.ok(sidecar.served.some(([status, p]) => status === 200 && p === '/dashboard/vendor/pusher.min.js'), 'pusher-js from vendor/');
    assert.equal(sidecar.connections.length, 0, 'no SSE stream in pusher mode');
    // Chromium reports the refused WebSocket on the console; nothing else may fail.
    assert.deepEqual(problems.console.filter((m) => !m.includes(`ws://127.0.0.1:${port}/`)), []);
    assertClean({ ...problems, console: [] });
  });
});

describe('dashboard configuration', () => {
  for (const [query, message] of [
    ['mode=pusher&channels=plant-live', 'key: mode=pusher needs the app key (?key=…)'],
    ['mode=ws', 'mode: "ws" is neither sse nor pusher'],
    ['channels=plant live', 'channels: "plant live" is not a channel name (1-200 characters of A-Za-z0-9_-=@.;)'],
    ['channels=,', 'channels: give at least one channel, e.g. ?channels=plant-live,alarms-plant'],
    ['mode=pusher&key=k&port=99999', 'port: "99999" is not a TCP port'],
  ]) {
    test(`?${query}: the page says what is wrong and opens no stream`, async (t) => {
      const { sidecar, page, problems } = await open(t, query);
      await page.waitForSelector('#errors:not([hidden])');
      assert.deepEqual(await page.$$eval('#errors li', (li) => li.map((l) => l.textContent)), [message]);
      assert.equal(await text(page, '#state'), 'offline');
      await sleep(200);
      assert.equal(sidecar.connections.length, 0);
      assert.equal(await page.$eval('#tags', (el) => el.children.length), 0);
      assertClean(problems);
    });
  }

  test('?sse= and ?token_url= on another origin are refused: the page says so and nothing leaves its origin', async (t) => {
    for (const [query, key, value] of [
      ['channels=private-plant.1&sse=http://other.example/sse', 'sseUrl', 'http://other.example/sse'],
      ['channels=private-plant.1&token_url=http://other.example/broadcasting/sse-token', 'tokenUrl', 'http://other.example/broadcasting/sse-token'],
    ]) {
      const { sidecar, page, problems } = await open(t, query);
      await page.waitForSelector('#errors:not([hidden])');
      assert.deepEqual(await page.$$eval('#errors li', (li) => li.map((l) => l.textContent)),
        [`${key}: refused "${value}": its origin http://other.example is not this page's (${sidecar.base}) nor one the server's configuration lists`]);
      assert.equal(await text(page, '#state'), 'offline');
      await sleep(300);
      assert.equal(sidecar.connections.length, 0, 'no stream');
      assert.equal(sidecar.tokenRequests.length, 0, 'no token request');
      assertClean(problems); // problems.foreign: no request to other.example
    }
  });

  test('with an embedded config a query naming where to connect is refused, not followed', async (t) => {
    const { sidecar, page, problems } = await open(t, 'channels=private-plant.1&sse=/elsewhere', (s) => {
      s.embedded = { channels: ['plant-live'], sseUrl: '/sse', tokenUrl: '/broadcasting/sse-token' };
    });
    await page.waitForSelector('#errors:not([hidden])');
    assert.deepEqual(await page.$$eval('#errors li', (li) => li.map((l) => l.textContent)),
      ["sse: refused from the address bar: the server's configuration sets where this page connects (the query may choose only channels, history, offline_after_ms)"]);
    await sleep(300);
    assert.equal(sidecar.connections.length, 0);
    assert.equal(sidecar.tokenRequests.length, 0);
    assertClean(problems);
  });

  test('the embedded JSON config is used, the query chooses the channels; a plain broadcastData sample is shown', async (t) => {
    const { sidecar, page, problems } = await open(t, 'channels=from-query', (s) => {
      s.embedded = { channels: ['from-embedded'], historySeconds: 30, mode: 'sse', sseUrl: '/sse' };
      s.add('from-query', 'scada.data.received', { data: { channel: 'AI-7', value: 3.5, unit: 'mA' }, timestamp: '2026-12-02T07:00:00.000000Z', channel: 'from-query' });
    });
    await page.waitForFunction(() => document.querySelector('.tag[data-tag="AI-7"] .unit')?.textContent === 'mA');
    assert.deepEqual(sidecar.connections.map((c) => c.channels), [['from-query']]);
    assert.equal(await text(page, '.tag[data-tag="AI-7"] .value'), '3.500');
    assert.equal(await page.evaluate(() => window.scadaDashboard.config.historySeconds), 30, 'from the embedded config');
    const st = await stats(page);
    assert.equal(st.windows, 0, 'a plain sample is not a window');
    assert.equal(st.samples, 1);
    assertClean(problems);
  });
});
