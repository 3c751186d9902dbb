<?php

return [
    'default' => env('BROADCAST_DRIVER', 'scada'),
    'connections' => [
        // Same keys as the pusher connection.
        'scada' => [
            'driver' => 'scada',
            'key' => env('PUSHER_APP_KEY'),
            'secret' => env('PUSHER_APP_SECRET'),
            'app_id' => env('PUSHER_APP_ID'),
            'options' => [
                'cluster' => env('PUSHER_APP_CLUSTER', 'mt1'),
                'host' => env('PUSHER_HOST'),
                'port' => env('PUSHER_PORT'),
                'scheme' => env('PUSHER_SCHEME', 'https'),
            ],
        ],
        'redis' => ['driver' => 'redis', 'connection' => 'default'],
        'log' => ['driver' => 'log'],
        'null' => ['driver' => 'null'],
    ],
];
