// The page's two ways in, both through laravel-echo:
//   mode=sse     the sidecar's GET /sse through the ScadaSseConnector (EventSource;
//                it resumes after drops with last_event_id and fetches tokens for
//                private-*/presence-* channels);
//   mode=pusher  a Pusher-protocol server (Pusher, Reverb, Soketi, Sockudo) through pusher-js.
// Everything is loaded from the page's own folder (vendor/), nothing from elsewhere.

import Echo from '../vendor/echo.js';
import { ScadaSseConnector } from '../vendor/scada-sse-connector.js';
import { isAlarmChannel } from './config.js';

/**
 * @param {object} config from readConfig()
 * @param {{event: Function, status: Function, gap: Function, error: Function}} on
 *   event(kind: 'data'|'tags'|'alarm', channel, payload, id|null); status('connecting'|'connected'|'lost');
 *   gap({channels, data}); error(message); refused(channel, status) (the token route said no)
 * @returns {Promise<{echo: Echo, disconnect: Function}>}
 */
export async function connect(config, on) {
  const current = { id: null }; // the SSE id of the event being dispatched (synchronously) to our listeners
  const echo = config.mode === 'pusher' ? await pusherEcho(config, on) : sseEcho(config, on, current);
  for (const name of config.channels) {
    const channel = subscribe(echo, name);
    const kinds = isAlarmChannel(config, name) ? ['alarm'] : ['data', 'tags'];
    for (const kind of kinds) {
      channel.listen('.' + config.events[kind], (payload) => on.event(kind, name, payload, current.id));
    }
    channel.error?.((error) => {
      on.error(`channel ${name}: ${error?.message ?? error?.error ?? 'refused'}`);
      on.refused?.(name, error?.status ?? null);
    });
  }
  return { echo, disconnect: () => echo.disconnect() };
}

function subscribe(echo, name) {
  if (name.startsWith('private-')) {
    return echo.private(name.slice('private-'.length));
  }
  if (name.startsWith('presence-')) {
    return echo.join(name.slice('presence-'.length));
  }
  return echo.channel(name);
}

function sseEcho(config, on, current) {
  if (typeof EventSource !== 'function') {
    throw new Error('this browser has no EventSource');
  }
  // Records the id of each event while the connector dispatches it.
  class TrackedEventSource extends EventSource {
    addEventListener(name, listener, options) {
      if (name === 'open' || name === 'error') {
        return super.addEventListener(name, listener, options);
      }
      return super.addEventListener(name, (event) => {
        current.id = event.lastEventId || null;
        try {
          listener(event);
        } finally {
          current.id = null;
        }
      }, options);
    }
  }
  const echo = new Echo({
    broadcaster: ScadaSseConnector,
    sseUrl: config.sseUrl,
    tokenUrl: config.tokenUrl,
    EventSource: TrackedEventSource,
    reconnectDelayMs: 500,
    maxReconnectDelayMs: 5000,
    onGap: (gap) => on.gap(gap),
    onError: (error) => on.error(error.message),
  });
  const statuses = { connected: 'connected', connecting: 'connecting', failed: 'lost', disconnected: 'lost' };
  echo.connector.onConnectionChange((status) => on.status(statuses[status] ?? 'lost'));
  return echo;
}

async function pusherEcho(config, on) {
  if (typeof window.Pusher !== 'function') {
    await loadScript(new URL('../vendor/pusher.min.js', import.meta.url).href);
  }
  const host = config.host || location.hostname;
  const echo = new Echo({
    broadcaster: 'pusher',
    key: config.key,
    cluster: config.cluster,
    wsHost: host,
    wsPort: config.port ?? 80,
    wssPort: config.port ?? 443,
    forceTLS: config.tls,
    enabledTransports: ['ws', 'wss'],
    authEndpoint: config.authEndpoint,
    Pusher: window.Pusher,
  });
  const connection = echo.connector.pusher.connection;
  const statuses = { initialized: 'connecting', connecting: 'connecting', connected: 'connected' };
  connection.bind('state_change', ({ current }) => on.status(statuses[current] ?? 'lost'));
  connection.bind('error', (error) => on.error(`pusher: ${error?.error?.data?.message ?? error?.type ?? 'connection error'}`));
  return echo;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(script);
  });
}
