<?php

// Laravel 11+: BROADCAST_CONNECTION; merged over the framework's connections
// (reverb, pusher, ably, log, null), so `pusher` (the oracle) is Laravel's own.
// Default `null`: a test that stopped setting BROADCAST_CONNECTION must not
// silently get the scada driver (the auth oracle would compare it with itself).
$eightTen = require dirname(__DIR__, 2) . '/app/config/broadcasting.php';

return [
    'default' => env('BROADCAST_CONNECTION', 'null'),
    'connections' => $eightTen['connections'],
];
