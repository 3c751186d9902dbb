<?php

use App\Support\Oracle;
use Illuminate\Support\Facades\Route;

// The same events through any broadcasting connection (`redis` = Laravel's
// RedisBroadcaster, `scada` = the package), from a real request so that
// toOthers() reads the X-Socket-ID header.
Route::get('/test/oracle/{connection}', fn (string $connection) => ['messages' => Oracle::broadcastAll($connection)]);

// Which broadcaster this app's default connection really is: the auth oracle
// asserts one side is Laravel's PusherBroadcaster and the other the scada driver.
Route::get('/test/broadcaster', fn () => ['class' => get_class(\Illuminate\Support\Facades\Broadcast::connection())]);
