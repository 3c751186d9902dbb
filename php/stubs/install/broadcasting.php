<?php

// Written by `php artisan scada:install` (this Laravel has no config:publish).
return [

    'default' => env('BROADCAST_DRIVER', 'null'),

    'connections' => [

        'log' => [
            'driver' => 'log',
        ],

        'null' => [
            'driver' => 'null',
        ],

    ],

];
