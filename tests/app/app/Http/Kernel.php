<?php

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

class Kernel extends HttpKernel
{
    protected $middleware = [];

    // No sessions or CSRF: the test app authenticates by header.
    protected $middlewareGroups = ['web' => [], 'api' => []];

    protected $routeMiddleware = [];
}
