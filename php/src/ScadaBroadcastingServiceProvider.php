<?php

namespace Scada\Broadcasting;

use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Queue\Events\JobExceptionOccurred;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Events\JobProcessed;
use Illuminate\Queue\Events\WorkerStopping;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;
use Scada\Broadcasting\Exceptions\ExtensionMissing;
use Scada\Broadcasting\Http\UserAuthenticationController;

/**
 * Registers the `scada` broadcasting driver, the ScadaBroadcastingService
 * singleton, queue-worker flushing and the artisan commands.
 */
class ScadaBroadcastingServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->mergeConfigFrom(__DIR__ . '/../config/scada-broadcasting.php', 'scada-broadcasting');

        $this->app->singleton(ScadaBroadcastingService::class, function ($app) {
            self::requireExtension();

            return new ScadaBroadcastingService(self::serviceOptions($app['config']->get('scada-broadcasting', [])));
        });
        $this->app->alias(ScadaBroadcastingService::class, 'scada.broadcasting');
    }

    public function boot(): void
    {
        self::requireExtension();

        $this->app->make(BroadcastManager::class)->extend('scada', function ($app, array $config) {
            return new ScadaBroadcaster($app->make(ScadaBroadcastingService::class), self::signer($config));
        });

        $this->flushQueueWorkers();
        $this->registerUserAuthenticationRoute();

        if ($this->app->runningInConsole()) {
            $this->publishes([
                __DIR__ . '/../config/scada-broadcasting.php' => $this->app->configPath('scada-broadcasting.php'),
            ], ['scada-broadcasting', 'scada-broadcasting-config']);

            $this->commands([
                Console\SidecarCommand::class,
                Console\StatusCommand::class,
                Console\LoadTestCommand::class,
                Console\FlushCommand::class,
            ]);
        }
    }

    /** No silent fallback: without the extension events would be lost. */
    public static function requireExtension(): void
    {
        if (! extension_loaded('scada_broadcast')) {
            throw ExtensionMissing::inThisPhp();
        }
    }

    /** Extension options from config/scada-broadcasting.php. */
    public static function serviceOptions(array $config): array
    {
        $options = [
            'socket' => (string) ($config['socket'] ?? '/run/scada-broadcast/sidecar.sock'),
            'overflow' => (string) ($config['overflow'] ?? 'reject'),
            'flush_timeout_ms' => (int) ($config['flush_timeout_ms'] ?? 2000),
        ];
        if (! empty($config['spool_dir'])) {
            $options['spool_dir'] = (string) $config['spool_dir'];
        }
        if (! empty($config['overflow_rules'])) {
            $options['overflow_rules'] = (array) $config['overflow_rules'];
        }
        foreach (['max_payload_bytes', 'max_depth', 'buffer_bytes', 'spool_max_bytes'] as $key) {
            if (isset($config['limits'][$key])) {
                $options[$key] = (int) $config['limits'][$key];
            }
        }

        return $options;
    }

    /** The signer for channel authorization, from the connection's key and secret. */
    public static function signer(array $config): ?PusherSigner
    {
        if (empty($config['key']) || empty($config['secret'])) {
            return null;
        }

        return new PusherSigner(
            (string) $config['key'],
            (string) $config['secret'],
            $config['options']['encryption_master_key_base64'] ?? ($config['encryption_master_key_base64'] ?? null) ?: null
        );
    }

    /** Jobs hand their events over when they end; workers when they stop. */
    protected function flushQueueWorkers(): void
    {
        $config = $this->app['config']->get('scada-broadcasting.queue', []);
        if (! ($config['flush_after_job'] ?? true)) {
            return;
        }
        $flush = function (int $timeoutMs): void {
            // Only a process that broadcast something has anything to flush.
            if ($this->app->resolved(ScadaBroadcastingService::class)) {
                $this->app->make(ScadaBroadcastingService::class)->flush($timeoutMs);
            }
        };
        $events = $this->app['events'];
        $afterJob = (int) ($config['flush_timeout_ms'] ?? 200);
        $events->listen([JobProcessed::class, JobFailed::class, JobExceptionOccurred::class], fn () => $flush($afterJob));
        $events->listen(WorkerStopping::class, fn () => $flush((int) $this->app['config']->get('scada-broadcasting.flush_timeout_ms', 2000)));
    }

    protected function registerUserAuthenticationRoute(): void
    {
        $path = $this->app['config']->get('scada-broadcasting.user_authentication_route');
        if ($path && ! $this->app->routesAreCached()) {
            Route::post($path, UserAuthenticationController::class)
                ->middleware($this->app['config']->get('scada-broadcasting.user_authentication_middleware', ['web']));
        }
    }
}
