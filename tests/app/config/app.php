<?php

return [
    'name' => env('APP_NAME', 'laravel'),
    'env' => 'testing',
    'debug' => (bool) env('APP_DEBUG', true),
    'url' => 'http://localhost',
    'timezone' => 'UTC',
    'locale' => 'en',
    'fallback_locale' => 'en',
    'key' => 'base64:' . base64_encode(str_repeat('k', 32)),
    'cipher' => 'AES-256-CBC',
    'providers' => [
        Illuminate\Auth\AuthServiceProvider::class,
        Illuminate\Broadcasting\BroadcastServiceProvider::class,
        Illuminate\Bus\BusServiceProvider::class,
        Illuminate\Cache\CacheServiceProvider::class,
        Illuminate\Database\DatabaseServiceProvider::class,
        Illuminate\Foundation\Providers\ConsoleSupportServiceProvider::class,
        Illuminate\Encryption\EncryptionServiceProvider::class,
        Illuminate\Filesystem\FilesystemServiceProvider::class,
        Illuminate\Foundation\Providers\FoundationServiceProvider::class,
        Illuminate\Queue\QueueServiceProvider::class,
        Illuminate\Redis\RedisServiceProvider::class,
        Illuminate\View\ViewServiceProvider::class,
        // SCADA_APP_WEB_SESSION=1: sessions and CSRF in the `web` group (app/Http/Kernel.php), as a stock app has.
        ...(getenv('SCADA_APP_WEB_SESSION') ? [Illuminate\Session\SessionServiceProvider::class] : []),
        // The package (what Composer's auto-discovery registers):
        Scada\Broadcasting\ScadaBroadcastingServiceProvider::class,
        App\Providers\AppServiceProvider::class,
        App\Providers\BroadcastServiceProvider::class,
        App\Providers\RouteServiceProvider::class,
    ],
    'aliases' => [
        'Broadcast' => Illuminate\Support\Facades\Broadcast::class,
        'ScadaBroadcast' => Scada\Broadcasting\Facades\ScadaBroadcast::class,
    ],
];
