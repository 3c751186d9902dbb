<?php

namespace Scada\Broadcasting\Tests\Support;

use Illuminate\Config\Repository;
use Illuminate\Container\Container;
use Illuminate\Foundation\Application;
use Illuminate\Support\Facades\Facade;

/**
 * A Laravel 8 application built from Debian's framework (no Composer
 * download), configured for the test's redis-server.
 */
final class LaravelApp
{
    public static function make(int $redisPort, array $config = []): Application
    {
        $app = new Application(sys_get_temp_dir() . '/scada-laravel-' . getmypid());
        Container::setInstance($app);
        $base = [
            'app' => ['env' => 'testing', 'debug' => true, 'name' => 'laravel', 'key' => 'base64:' . base64_encode(str_repeat('k', 32)), 'cipher' => 'AES-256-CBC'],
            'database' => ['redis' => [
                'client' => 'phpredis',
                'options' => ['prefix' => 'laravel_database_'],
                'default' => ['host' => '127.0.0.1', 'port' => $redisPort, 'database' => 0],
            ]],
            'broadcasting' => [
                'default' => 'redis',
                'connections' => [
                    'redis' => ['driver' => 'redis', 'connection' => 'default'],
                    'null' => ['driver' => 'null'],
                ],
            ],
            'queue' => [
                'default' => 'redis',
                'connections' => [
                    'redis' => ['driver' => 'redis', 'connection' => 'default', 'queue' => 'default', 'retry_after' => 90, 'block_for' => null],
                    'sync' => ['driver' => 'sync'],
                ],
            ],
        ];
        $app->instance('config', new Repository(array_replace_recursive($base, $config)));
        $app->register(\Illuminate\Events\EventServiceProvider::class);
        $app->register(\Illuminate\Redis\RedisServiceProvider::class);
        $app->register(\Illuminate\Bus\BusServiceProvider::class);
        $app->register(\Illuminate\Queue\QueueServiceProvider::class);
        $app->register(\Illuminate\Broadcasting\BroadcastServiceProvider::class);
        Facade::clearResolvedInstances();
        Facade::setFacadeApplication($app);
        return $app;
    }
}
