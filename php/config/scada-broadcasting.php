<?php

return [

    /*
    |--------------------------------------------------------------------------
    | Sidecar socket and spool
    |--------------------------------------------------------------------------
    |
    | The Unix socket the PHP extension hands events to, and the directory
    | where a PHP process spools events while the sidecar is away (drained
    | when it is back). Both are shared by every PHP process on the host.
    |
    */

    'socket' => env('SCADA_SIDECAR_SOCKET', '/run/scada-broadcast/sidecar.sock'),

    'spool_dir' => env('SCADA_SPOOL_DIR'),

    /*
    |--------------------------------------------------------------------------
    | Limits and back-pressure
    |--------------------------------------------------------------------------
    |
    | max_payload_bytes: largest event data (Pusher's limit is 10 KB).
    | overflow: what a call does when this process's buffer and spool are
    | full: 'reject' (the call returns false / the driver throws, counted) or
    | 'drop_oldest' (older queued events are evicted, counted).
    | overflow_rules: the same choice per channel pattern (first match wins),
    | e.g. telemetry may be evicted while alarms are refused, never dropped.
    | Only 'drop_oldest' events are ever evicted, whoever needs the room.
    |
    */

    'limits' => [
        'max_payload_bytes' => (int) env('SCADA_MAX_PAYLOAD_BYTES', 10240),
        'max_depth' => 64,
        'buffer_bytes' => 8 * 1024 * 1024,
        'spool_max_bytes' => 256 * 1024 * 1024,
    ],

    'overflow' => env('SCADA_OVERFLOW', 'reject'),

    'overflow_rules' => [
        // 'scada-*' => 'drop_oldest',
        // 'alarms-*' => 'reject',
    ],

    'flush_timeout_ms' => 2000,

    /*
    |--------------------------------------------------------------------------
    | Queue workers
    |--------------------------------------------------------------------------
    |
    | Events a job broadcast are handed to the sidecar when the job ends
    | (waiting at most flush_timeout_ms, never on the network) and when the
    | worker stops.
    |
    */

    'queue' => [
        'flush_after_job' => (bool) filter_var(env('SCADA_QUEUE_FLUSH_AFTER_JOB', true), FILTER_VALIDATE_BOOLEAN),
        'flush_timeout_ms' => 200,
    ],

    /*
    |--------------------------------------------------------------------------
    | User authentication (pusher:signin)
    |--------------------------------------------------------------------------
    |
    | Laravel 10+ apps use Broadcast::userRoutes(). On older Laravel versions
    | set a path here to have the package register the endpoint.
    |
    */

    'user_authentication_route' => env('SCADA_USER_AUTH_ROUTE'),

    /*
    |--------------------------------------------------------------------------
    | Server-sent events (the sidecar's GET /sse) and their tokens
    |--------------------------------------------------------------------------
    |
    | url: where browsers open the EventSource (the sidecar's SSE listener,
    | usually behind the same reverse proxy as the app); give it to the Echo
    | connector as `sseUrl`.
    | secret: signs the tokens private-* and presence-* channels need; the
    | sidecar verifies them with the same secret. Empty: PUSHER_APP_SECRET,
    | else the broadcasting connection's `secret`.
    | token_route: POST path issuing tokens (false or empty: not registered), authorizing
    | each channel by routes/channels.php as /broadcasting/auth does, behind the
    | same middleware as /broadcasting/auth unless token_middleware is set.
    | token_ttl: seconds a token stays valid (the connector fetches a new one).
    | addr, cors, dashboard_connect: what `php artisan scada:sidecar` gives the
    | sidecar: the listener's loopback address (empty: no SSE listener), the
    | origins allowed cross-origin ('*' for any; empty: same origin only) and
    | the origins its dashboard page may also connect to (e.g. ws://host:6001);
    | the sidecar verifies tokens with `secret` above.
    |
    */

    'sse' => [
        'addr' => env('SCADA_SSE_ADDR'),
        'cors' => array_values(array_filter(array_map('trim', explode(',', (string) env('SCADA_SSE_CORS', ''))))),
        // Host names a loopback listener answers besides IP addresses and localhost (DNS rebinding
        // protection): the name a reverse proxy in front passes on, e.g. plant.example.
        'allowed_hosts' => array_values(array_filter(array_map('trim', explode(',', (string) env('SCADA_SSE_ALLOWED_HOSTS', ''))))),
        'dashboard_connect' => array_values(array_filter(array_map('trim', explode(',', (string) env('SCADA_DASHBOARD_CONNECT', ''))))),
        'url' => env('SCADA_SSE_URL', '/sse'),
        'secret' => env('SCADA_SSE_SECRET', env('PUSHER_APP_SECRET')),
        'token_route' => env('SCADA_SSE_TOKEN_ROUTE', '/broadcasting/sse-token'),
        'token_middleware' => null,
        'token_ttl' => (int) env('SCADA_SSE_TOKEN_TTL', 300),
    ],

    /*
    |--------------------------------------------------------------------------
    | The live dashboard page (resources/dashboard)
    |--------------------------------------------------------------------------
    |
    | route: GET path serving the page and its files (e.g. '/scada/dashboard');
    | empty or false: not registered (the default: opt in). middleware: put
    | 'auth' here to keep it for logged-in users. channels: what it shows
    | (channels named alarms-* carry alarms). mode: 'sse' (the sidecar's
    | sse.url above) or 'pusher' (pusher-js with the broadcasting connection's
    | key, host, port and scheme; pusher.* sets the host, port and scheme the
    | browser uses when they differ from the app's). `php artisan vendor:publish
    | --tag=scada-dashboard` copies the static files to
    | public/vendor/scada-broadcast/dashboard instead, for a web server.
    |
    */

    'dashboard' => [
        'route' => env('SCADA_DASHBOARD_ROUTE', false),
        'middleware' => ['web'],
        'channels' => array_values(array_filter(explode(',', (string) env('SCADA_DASHBOARD_CHANNELS', 'plant-live,alarms-plant')))),
        'mode' => env('SCADA_DASHBOARD_MODE', 'sse'),
        // mode pusher: the Pusher-protocol server as the browser reaches it (default: the broadcasting connection's).
        'pusher' => [
            'host' => env('SCADA_DASHBOARD_PUSHER_HOST'),
            'port' => env('SCADA_DASHBOARD_PUSHER_PORT'),
            'scheme' => env('SCADA_DASHBOARD_PUSHER_SCHEME'),
        ],
    ],

    /*
    |--------------------------------------------------------------------------
    | Host-wide throttling
    |--------------------------------------------------------------------------
    |
    | Events on matching channels (any event, e.g. from the broadcasting
    | driver) share one window per channel across every PHP process: the first
    | goes out at once, then one event per window: 'aggregate' turns samples
    | into {count, sum, min, max, average, first, last} per series, 'latest'
    | keeps the newest event of each name. broadcastAggregatedData() always
    | aggregates, with the window it is given.
    |
    */

    'throttle' => [
        // ['channels' => 'scada-*', 'window_ms' => 100, 'mode' => 'aggregate'],
    ],

    /*
    |--------------------------------------------------------------------------
    | The sidecar (php artisan scada:sidecar)
    |--------------------------------------------------------------------------
    |
    | `scada:sidecar` runs the sidecar in the foreground with a configuration
    | derived from this file and Laravel's own config (database.redis for the
    | Redis target, broadcasting.connections.* for Pusher-protocol targets), so
    | there is one source of truth. `scada:sidecar --print-config` shows it.
    |
    */

    'sidecar' => [
        'binary' => env('SCADA_SIDECAR_BIN', 'scada-sidecar'),
        'data_dir' => env('SCADA_DATA_DIR'),
        'socket_group' => env('SCADA_SOCKET_GROUP'),
        'status_addr' => env('SCADA_STATUS_ADDR'),
        'log' => env('SCADA_LOG', 'info'),
        'shutdown_timeout_secs' => 10,
        // Channel patterns delivered ahead of the rest, comma-separated
        // (e.g. 'alarms-*,critical-*'); passed to the sidecar as SCADA_PRIORITY.
        'priority' => env('SCADA_PRIORITY'),

        'targets' => [
            // Laravel's RedisBroadcaster format on this Redis connection
            // (database.redis.<connection>, prefix from database.redis.options.prefix).
            'redis' => [
                'enabled' => env('SCADA_REDIS_ENABLED', true),
                'connection' => 'default',
                // Also keep each channel's latest message per event name in the
                // hash <prefix>scada:last:<channel> (Redis::hgetall('scada:last:plant-1')).
                'last_value' => (bool) filter_var(env('SCADA_REDIS_LAST_VALUE', false), FILTER_VALIDATE_BOOLEAN),
            ],
            // Pusher HTTP API targets, named after broadcasting connections
            // (key, secret, app_id, options.host/port/scheme/cluster).
            'pusher' => [
                // 'scada' => ['connection' => 'scada', 'max_batch_events' => 100, 'idempotency_key' => false],
            ],
        ],
    ],

];
