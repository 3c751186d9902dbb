<?php
// The Laravel 11+ application layout (Application::configure(), routes and
// broadcasting from bootstrap/app.php, BROADCAST_CONNECTION), built from
// Debian's php-laravel-framework. Events, jobs and commands are tests/app's.

use Illuminate\Foundation\Application;
use Illuminate\Foundation\Configuration\Exceptions;
use Illuminate\Foundation\Configuration\Middleware;

$scadaAppDirs = [dirname(__DIR__) . '/app/', dirname(__DIR__, 2) . '/app/app/'];
require dirname(__DIR__, 2) . '/app/bootstrap/autoload.php';

// The channel routes the two ways a Laravel 11+ app registers them:
// withRouting(channels:) (install:broadcasting's way, the default here) or
// withBroadcasting() with route attributes (SCADA_APP_CHANNELS=withBroadcasting).
$withBroadcasting = getenv('SCADA_APP_CHANNELS') === 'withBroadcasting';
$builder = Application::configure(basePath: dirname(__DIR__))
    ->withRouting(
        web: __DIR__ . '/../routes/web.php',
        commands: __DIR__ . '/../routes/console.php',
        channels: $withBroadcasting ? null : __DIR__ . '/../routes/channels.php',
        health: '/up',
    );
if ($withBroadcasting) {
    // SCADA_APP_BROADCAST_MIDDLEWARE=a,b: other middleware for /broadcasting/auth (default web).
    $middleware = getenv('SCADA_APP_BROADCAST_MIDDLEWARE');
    $builder = $builder->withBroadcasting(__DIR__ . '/../routes/channels.php', ['middleware' => $middleware ? explode(',', $middleware) : ['web']]);
}
$app = $builder
    // What Composer's package discovery registers from php/composer.json:
    ->withProviders([Scada\Broadcasting\ScadaBroadcastingServiceProvider::class])
    ->withCommands([App\Console\Commands\TestBroadcast::class])
    ->withMiddleware(function (Middleware $middleware) {
    })
    ->withExceptions(function (Exceptions $exceptions) {
    })
    ->create();
$app->useStoragePath($scadaStorage);

return $app;
