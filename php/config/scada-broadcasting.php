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

        'targets' => [
            // Laravel's RedisBroadcaster format on this Redis connection
            // (database.redis.<connection>, prefix from database.redis.options.prefix).
            'redis' => [
                'enabled' => env('SCADA_REDIS_ENABLED', true),
                'connection' => 'default',
            ],
            // Pusher HTTP API targets, named after broadcasting connections
            // (key, secret, app_id, options.host/port/scheme/cluster).
            'pusher' => [
                // 'scada' => ['connection' => 'scada', 'max_batch_events' => 100, 'idempotency_key' => false],
            ],
        ],
    ],

];
