<?php

use Illuminate\Http\Request;

define('LARAVEL_START', microtime(true));

(require_once __DIR__ . '/../bootstrap/app.php')->handleRequest(Request::capture());
