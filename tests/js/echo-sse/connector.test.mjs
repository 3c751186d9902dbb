// The Echo connector (php/resources/js/scada-sse-connector.js) driven through
// real laravel-echo (2.x and 1.x) and the eventsource polyfill against
// fake-sidecar.mjs, which follows the sidecar's documented SSE protocol.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import Echo2 from 'laravel-echo';
import Echo1Module from 'laravel-echo-1'; // CommonJS (dist/echo.common.js) under node
import { ScadaSseConnector } from '../../../php/resources/js/scada-sse-connector.js';
import { FakeSidecar, sleep, waitFor } from './fake-sidecar.mjs';

const Echo1 = Echo1Module.default ?? Echo1Module;

async function setup(t, Echo, sidecarOptions = {}, options = {}) {
  const sidecar = await new FakeSidecar(sidecarOptions).start();
  const errors = [];
  const gaps = [];
  const echo = new Echo({
    broadcaster: ScadaSseConnector,
    sseUrl: `${sidecar.base}/sse`,
    tokenUrl: `${sidecar.base}/broadcasting/sse-token`,
    csrfToken: 'csrf-123',
    EventSource,
    reconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
    onError: (e) => errors.push(e.message),
    onGap: (gap) => gaps.push(gap),
    ...options,
  });
  t.after(async () => {
    echo.disconnect();
    await sidecar.stop();
  });
  return { sidecar, echo, errors, gaps };
}

for (const [version, Echo] of [['laravel-echo 2.5', Echo2], ['laravel-echo 1.19', Echo1]]) {
  describe(version, () => {
    test('listen() gets every event once, in order, across a dropped connection, an overflow, a 403 and a gap', async (t) => {
      const { sidecar, echo, errors, gaps } = await setup(t, Echo, { csrf: 'csrf-123' });
      for (let i = 1; i <= 9; i++) {
        if (i % 3 === 0) {
          sidecar.add('private-plant.1', 'App\\Events\\SensorAlarm', { plant: 1, n: i });
        } else {
          sidecar.add('scada-realtime', 'scada.data.received', { data: { value: i }, channel: 'scada-realtime' });
        }
      }
      sidecar.add('scada-other', 'scada.data.received', { never: 'subscribed' });
      sidecar.script = [
        { count: 3, after: 'drop' }, // ids 1-3, then the connection is lost
        { count: 2, after: 'overflow' }, // ids 4-5, then the server ends the slow client
        { refuse: 403 }, // the stream refuses the token once (e.g. expired early)
        { gap: { from: 6, to: 6, reason: 'no longer in the journal' } }, // the rest, and a gap notice
      ];
      const got = [];
      echo.channel('scada-realtime').listen('.scada.data.received', (data) => got.push(data.data.value));
      echo.private('plant.1').listen('SensorAlarm', (data) => got.push(data.n));

      await waitFor('9 events', () => got.length >= 9);
      assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const asked = sidecar.connections.map((c) => [c.channels.join(','), c.lastEventId, c.status]);
      assert.deepEqual(asked, [
        ['private-plant.1,scada-realtime', null, 200],
        ['private-plant.1,scada-realtime', '3', 200],
        ['private-plant.1,scada-realtime', '5', 403],
        ['private-plant.1,scada-realtime', '5', 200],
      ]);
      // A token before the first stream and a new one after the 403; both with the CSRF header, for the protected channel only.
      assert.equal(sidecar.tokenRequests.length, 2);
      for (const r of sidecar.tokenRequests) {
        assert.deepEqual(r.channels, ['private-plant.1']);
        assert.equal(r.headers['x-csrf-token'], 'csrf-123');
      }
      assert.equal(gaps.length, 1);
      assert.deepEqual(gaps[0], { channels: ['private-plant.1', 'scada-realtime'], data: { from: 6, to: 6, reason: 'no longer in the journal' } });
      assert.ok(errors.some((m) => m.includes('overflow')), errors.join('\n'));
      assert.ok(errors.some((m) => m.includes('HTTP 403')), errors.join('\n'));

      // Live events on the resumed stream; the connection stays up.
      sidecar.publish('scada-realtime', 'scada.data.received', { data: { value: 10 } });
      sidecar.publish('private-plant.1', 'App\\Events\\SensorAlarm', { n: 11 });
      await waitFor('live events', () => got.length >= 11);
      assert.deepEqual(got.slice(9), [10, 11]);
      assert.equal(echo.connector.connectionStatus(), 'connected');

      echo.disconnect();
      await waitFor('the stream to close', () => sidecar.openConnections().length === 0);
      await sleep(150);
      assert.equal(sidecar.connections.length, 4, 'no reconnection after disconnect()');
      assert.equal(echo.connector.connectionStatus(), 'disconnected');
    });

    test('event names map as in Echo: .literal, namespaced classes, custom namespace; listenToAll, stopListening', async (t) => {
      const { sidecar, echo } = await setup(t, Echo, {}, { namespace: 'App.Events' });
      const got = [];
      const channel = echo.channel('names');
      channel.listen('.sensor.alarm', (d) => got.push(['literal', d.n]));
      channel.listen('OrderShipped', (d) => got.push(['class', d.n]));
      channel.listen('Plant.Alarm', (d) => got.push(['nested', d.n]));
      const dropped = (d) => got.push(['stopped', d.n]);
      channel.listen('.dropped', dropped).stopListening('.dropped', dropped);
      channel.listenToAll((name, d) => got.push(['all:' + name, d.n]));
      await waitFor('the stream', () => sidecar.openConnections().length === 1);
      sidecar.publish('names', 'sensor.alarm', { n: 1 });
      sidecar.publish('names', 'App\\Events\\OrderShipped', { n: 2 });
      sidecar.publish('names', 'App\\Events\\Plant\\Alarm', { n: 3 });
      sidecar.publish('names', 'dropped', { n: 4 });
      sidecar.publish('names', 'sensor.alarm', { n: 5 });
      await waitFor('events', () => got.filter(([k]) => !k.startsWith('all:')).length >= 4);
      assert.deepEqual(got.filter(([k]) => !k.startsWith('all:')), [['literal', 1], ['class', 2], ['nested', 3], ['literal', 5]]);
      assert.deepEqual(got.filter(([k]) => k.startsWith('all:')), [['all:.sensor.alarm', 1], ['all:OrderShipped', 2], ['all:Plant\\Alarm', 3], ['all:.sensor.alarm', 5]]);
      assert.throws(() => channel.whisper('typing', {}), /one-way/);
      assert.equal(echo.socketId(), undefined);
    });

    test('changing channels reopens one stream with the new set, resuming after the last id; leaving all closes it', async (t) => {
      const { sidecar, echo } = await setup(t, Echo);
      const got = [];
      echo.channel('a').listen('.tick', (d) => got.push('a' + d.n));
      echo.channel('b').listen('.tock', (d) => got.push('b' + d.n));
      await waitFor('the first stream', () => sidecar.openConnections().length === 1);
      assert.deepEqual(sidecar.connections.map((c) => c.channels.join(',')), ['a,b'], 'channels joined in one tick share one stream');
      sidecar.publish('a', 'tick', { n: 1 });
      sidecar.publish('b', 'tock', { n: 2 });
      await waitFor('2 events', () => got.length === 2);

      // Events published while the set changes are not lost: the new stream resumes after id 2.
      echo.channel('c').listen('.tack', (d) => got.push('c' + d.n));
      sidecar.add('a', 'tick', { n: 3 });
      await waitFor('the second stream', () => sidecar.connections.length === 2 && sidecar.openConnections().length === 1);
      assert.deepEqual([sidecar.connections[1].channels.join(','), sidecar.connections[1].lastEventId], ['a,b,c', '2']);
      sidecar.publish('c', 'tack', { n: 4 });
      await waitFor('4 events', () => got.length === 4);
      assert.deepEqual(got, ['a1', 'b2', 'a3', 'c4']);

      echo.leave('b');
      await waitFor('the third stream', () => sidecar.connections.length === 3 && sidecar.openConnections().length === 1);
      assert.deepEqual([sidecar.connections[2].channels.join(','), sidecar.connections[2].lastEventId], ['a,c', '4']);
      echo.leaveChannel('a');
      echo.leaveChannel('c');
      await waitFor('no stream', () => sidecar.openConnections().length === 0);
      await sleep(100);
      assert.equal(sidecar.connections.length, 3);
      assert.equal(echo.connector.connectionStatus(), 'disconnected');
    });

    test('a channel the token route refuses gets its error() callback; the others keep streaming', async (t) => {
      const { sidecar, echo } = await setup(t, Echo);
      sidecar.refusedChannels.add('private-vault');
      const got = [];
      const refusals = [];
      echo.private('vault').error((e) => refusals.push(e)).listen('.v', () => got.push('vault'));
      echo.private('plant.1').listen('.x', (d) => got.push('plant' + d.n));
      echo.channel('public').listen('.y', (d) => got.push('public' + d.n));
      await waitFor('the stream', () => sidecar.openConnections().length === 1);
      assert.equal(refusals.length, 1);
      assert.equal(refusals[0].status, 403);
      assert.match(refusals[0].error, /not allowed to subscribe to private-vault/);
      assert.deepEqual(sidecar.tokenRequests.map((r) => r.channels.join(',')), ['private-plant.1,private-vault', 'private-plant.1']);
      assert.deepEqual(sidecar.openConnections()[0].channels, ['private-plant.1', 'public']);
      sidecar.publish('private-plant.1', 'x', { n: 1 });
      sidecar.publish('public', 'y', { n: 2 });
      await waitFor('2 events', () => got.length === 2);
      assert.deepEqual(got, ['plant1', 'public2']);
    });

    test('a token refusal that names no channel (419 CSRF mismatch) leaves every protected channel out, not the public ones', async (t) => {
      const { sidecar, echo, errors } = await setup(t, Echo, { csrf: 'the-right-one' });
      const refusals = [];
      const got = [];
      echo.private('plant.1').error((e) => refusals.push(['plant.1', e.status])).listen('.x', () => got.push('plant'));
      echo.join('control-room').error((e) => refusals.push(['control-room', e.status])).listen('.z', () => got.push('room'));
      echo.channel('public').listen('.y', (d) => got.push('public' + d.n));
      await waitFor('the public stream', () => sidecar.openConnections().length === 1);
      assert.deepEqual(refusals.sort(), [['control-room', 419], ['plant.1', 419]]);
      assert.deepEqual(sidecar.openConnections()[0].channels, ['public']);
      assert.ok(errors.some((m) => m.includes('token refused (HTTP 419): CSRF token mismatch.')), errors.join('\n'));
      sidecar.publish('public', 'y', { n: 1 });
      await waitFor('the event', () => got.length === 1);
      assert.deepEqual(got, ['public1']);
    });

    test('one stream with envelope=1 for every channel: same event names on several channels, an event on two of them dispatched once to each', async (t) => {
      const { sidecar, echo } = await setup(t, Echo);
      const got = [];
      echo.channel('plant-1').listen('.scada.data.received', (d) => got.push('p1:' + d.n));
      echo.channel('plant-2').listen('.scada.data.received', (d) => got.push('p2:' + d.n));
      echo.channel('alarms').listen('.alarm', (d) => got.push('alarm:' + d.n));
      for (let i = 3; i <= 9; i++) {
        echo.channel(`plant-${i}`).listen('.scada.data.received', (d) => got.push(`p${i}:` + d.n)); // more than 6 channels, one connection
      }
      await waitFor('one stream', () => sidecar.openConnections().length === 1);
      assert.equal(sidecar.connections.length, 1);
      assert.deepEqual(sidecar.connections[0].channels, ['alarms', ...Array.from({ length: 9 }, (_, i) => `plant-${i + 1}`)]);
      assert.equal(sidecar.connections[0].envelope, true, 'asked for envelope=1');
      sidecar.publish('plant-1', 'scada.data.received', { n: 1 });
      sidecar.publish('alarms', 'alarm', { n: 2 });
      sidecar.publish(['plant-2', 'plant-1'], 'scada.data.received', { n: 3 }); // one event on two channels
      sidecar.publish('plant-9', 'scada.data.received', { n: 4 });
      sidecar.publish('plant-2', 'other.event', { n: 5 }); // nobody listens for it
      await waitFor('5 deliveries', () => got.length >= 5);
      await sleep(50);
      assert.deepEqual(got, ['p1:1', 'alarm:2', 'p1:3', 'p2:3', 'p9:4']);
      assert.deepEqual(sidecar.connections[0].sent, [1, 2, 3, 4, 5], 'the two-channel event was sent once');
      assert.equal(echo.connector.connectionStatus(), 'connected');
    });

    test('alarms that overtook queued telemetry carry the last in-order id and are all delivered', async (t) => {
      const { sidecar, echo } = await setup(t, Echo);
      const got = [];
      echo.channel('plant').listen('.scada.data.received', (d) => got.push('plant:' + d.n));
      echo.channel('alarms-1').listen('.alarm', (d) => got.push('alarm:' + d.n));
      await waitFor('one stream', () => sidecar.openConnections().length === 1);
      sidecar.publish('plant', 'scada.data.received', { n: 1 });
      await waitFor('the first sample', () => got.length === 1);
      sidecar.overtake('alarms-1', 'alarm', { n: 'a' }); // id 1 again
      sidecar.overtake('alarms-1', 'alarm', { n: 'b' }); // and again
      sidecar.publish('plant', 'scada.data.received', { n: 2 });
      await waitFor('4 deliveries', () => got.length >= 4);
      await sleep(50);
      assert.deepEqual(got, ['plant:1', 'alarm:a', 'alarm:b', 'plant:2']);
    });

    test('a server that ignores envelope=1 (bare payloads): each event is reported, not dispatched to a guessed channel', async (t) => {
      const { sidecar, echo, errors } = await setup(t, Echo, { ignoresEnvelope: true });
      const got = [];
      echo.channel('a').listen('.x', (d) => got.push(d));
      await waitFor('the stream', () => sidecar.openConnections().length === 1);
      sidecar.publish('a', 'x', { n: 1 });
      await waitFor('the error', () => errors.length === 1);
      assert.match(errors[0], /event 1 "x" on stream a is not an envelope \{"channels":\[…\],"data":…\}; dropped/);
      assert.deepEqual(got, []);
      assert.equal(echo.connector.connectionStatus(), 'connected');
    });

    test('when the token expires the sidecar ends the stream: a new token, resumed after the last id, no gap, no repeat', async (t) => {
      const { sidecar, echo, errors } = await setup(t, Echo, { tokenTtl: 2 }, { tokenRefreshMarginSeconds: 0 });
      const got = [];
      const states = [];
      echo.connector.onConnectionChange((s) => states.push(s));
      echo.private('plant.1').listen('.x', (d) => got.push(d.n));
      echo.channel('public').listen('.x', (d) => got.push(d.n));
      await waitFor('the stream', () => sidecar.openConnections().length === 1);
      sidecar.publish('private-plant.1', 'x', { n: 1 });
      sidecar.publish('public', 'x', { n: 2 });
      await waitFor('the first stream to expire', () => sidecar.connections[0].expired === true, 4000);
      sidecar.publish('public', 'x', { n: 3 }); // while the page renews its token (stored, or live if it already has)
      await waitFor('the renewed stream', () => sidecar.connections.length === 2 && sidecar.openConnections().length === 1, 4000);
      sidecar.publish('private-plant.1', 'x', { n: 4 });
      await waitFor('4 events', () => got.length >= 4);
      await sleep(50);
      assert.deepEqual(got, [1, 2, 3, 4]);
      assert.equal(sidecar.connections[1].lastEventId, '2');
      assert.notEqual(sidecar.connections[1].token, sidecar.connections[0].token, 'a new token');
      assert.equal(sidecar.tokenRequests.length, 2);
      assert.deepEqual(sidecar.connections.map((c) => c.status), [200, 200]);
      assert.ok(!states.includes('failed'), states.join(','));
      assert.deepEqual(errors, [], 'an expiry is routine, not an error');
    });

    test('a browser-like EventSource (errors without a status): the cached token is kept across failed connects, dropped after a probe sees 403', async (t) => {
      // What browsers give: an error event with no HTTP status.
      class NoStatusEventSource extends EventSource {
        set onerror(fn) {
          super.onerror = fn && (() => fn(new Event('error')));
        }

        get onerror() {
          return super.onerror;
        }
      }
      const { sidecar, echo, errors } = await setup(t, Echo, {}, { EventSource: NoStatusEventSource, fetch: globalThis.fetch });
      sidecar.add('private-plant.1', 'x', { n: 1 });
      sidecar.script = [{ refuse: 503 }, { refuse: 503 }, { refuse: 503 }, { refuse: 503 }, { after: 'open' }];
      const got = [];
      echo.private('plant.1').listen('.x', (d) => got.push(d.n));
      await waitFor('the event', () => got.length === 1, 8000);
      // Connects 1 and 2 fail, a probe (3) sees 503 (not the token's fault), connect 4 fails, connect 5 opens.
      assert.deepEqual(sidecar.connections.map((c) => c.status), [503, 503, 503, 503, 200]);
      assert.equal(sidecar.tokenRequests.length, 1, 'one token for all of them');
      assert.ok(errors.some((m) => m.includes('refused (HTTP 503)')), errors.join('\n'));

      // The token is revoked: the stream answers 403; the probe learns it and only then a new token is fetched.
      sidecar.script = [{ refuse: 403 }, { refuse: 403 }, { refuse: 403 }];
      sidecar.openConnections()[0].res.socket.destroy();
      sidecar.add('private-plant.1', 'x', { n: 2 });
      await waitFor('the event after the 403s', () => got.length === 2, 8000);
      assert.deepEqual(got, [1, 2]);
      assert.deepEqual(sidecar.connections.slice(5).map((c) => c.status), [403, 403, 403, 200]);
      assert.equal(sidecar.tokenRequests.length, 2, 'a new token only after the probe saw 403');
      assert.equal(sidecar.connections.at(-1).lastEventId, '1');
    });

    test('a failing token route is retried with backoff; a token about to expire is fetched again before reconnecting', async (t) => {
      const { sidecar, echo, errors } = await setup(t, Echo, { tokenTtl: 13 }, { tokenRefreshMarginSeconds: 12 });
      sidecar.tokenScript = [{ status: 500, body: { message: 'Server Error' } }, { status: 502 }];
      sidecar.add('private-plant.1', 'x', { n: 1 });
      sidecar.add('private-plant.1', 'x', { n: 2 });
      // The first stream drops after its token got within the refresh margin: reconnecting fetches a new one first.
      sidecar.script = [{ count: 1, after: 'drop', delayMs: 1100 }];
      const got = [];
      echo.private('plant.1').listen('.x', (d) => got.push(d.n));
      await waitFor('2 events', () => got.length === 2, 8000);
      assert.deepEqual(got, [1, 2]);
      assert.equal(sidecar.tokenRequests.length, 4, 'two failures, the first token, the renewed one');
      assert.ok(errors[0].includes('bad token response') && errors[0].includes('HTTP 500') && errors[0].includes('Server Error'), errors[0]);
      assert.deepEqual(sidecar.connections.map((c) => [c.lastEventId, c.status]), [[null, 200], ['1', 200]]);
    });
  });
}

test('without an EventSource the connector says what to pass', () => {
  assert.throws(() => new ScadaSseConnector({ EventSource: null }), /no EventSource: pass options.EventSource/);
});
