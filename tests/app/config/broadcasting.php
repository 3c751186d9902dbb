<?php

// The scada driver and Laravel's own pusher driver (the oracle) sign with the same app credentials.
$pusherKeys = [
    'key' => env('PUSHER_APP_KEY'),
    'secret' => env('PUSHER_APP_SECRET'),
    'app_id' => env('PUSHER_APP_ID'),
    'options' => [
        'cluster' => env('PUSHER_APP_CLUSTER', 'mt1'),
        'host' => env('PUSHER_HOST'),
        'port' => env('PUSHER_PORT'),
        'scheme' => env('PUSHER_SCHEME', 'https'),
    ],
];

return [
    'default' => env('BROADCAST_DRIVER', 'scada'),
    'connections' => [
        // Same keys as the pusher connection.
        'scada' => ['driver' => 'scada'] + $pusherKeys,
        // Laravel's own drivers, the oracles the scada driver is compared with.
        'pusher' => ['driver' => 'pusher'] + $pusherKeys,
        'redis' => ['driver' => 'redis', 'connection' => 'default'],
        'log' => ['driver' => 'log'],
        'null' => ['driver' => 'null'],
    ],
];
