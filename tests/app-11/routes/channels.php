<?php

use Illuminate\Support\Facades\Broadcast;

// The same channel rules as the 8/10 app, and Laravel 10+'s pusher:signin route.
require dirname(__DIR__, 2) . '/app/routes/channels.php';

Broadcast::userRoutes();
