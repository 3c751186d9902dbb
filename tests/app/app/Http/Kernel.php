<?php

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

class Kernel extends HttpKernel
{
    protected $middleware = [];

    // No sessions or CSRF: the test app authenticates by header (SCADA_APP_WEB_SESSION=1: a stock app's session and CSRF).
    protected $middlewareGroups = ['web' => [], 'api' => []];

    protected $routeMiddleware = [];

    public function __construct(\Illuminate\Contracts\Foundation\Application $app, \Illuminate\Routing\Router $router)
    {
        if (getenv('SCADA_APP_WEB_SESSION')) {
            $this->middlewareGroups['web'] = [\Illuminate\Session\Middleware\StartSession::class, \Illuminate\Foundation\Http\Middleware\VerifyCsrfToken::class];
        }
        parent::__construct($app, $router);
    }
}
