<?php

namespace Scada\Broadcasting;

use Illuminate\Broadcasting\BroadcastController;
use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Contracts\Config\Repository as ConfigRepository;
use Illuminate\Queue\Events\JobExceptionOccurred;
use Illuminate\Queue\Events\JobFailed;
use Illuminate\Queue\Events\JobProcessed;
use Illuminate\Queue\Events\WorkerStopping;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;
use Scada\Broadcasting\Exceptions\ExtensionMissing;
use Scada\Broadcasting\Http\DashboardController;
use Scada\Broadcasting\Http\SseTokenController;
use Scada\Broadcasting\Http\UserAuthenticationController;
use Scada\Broadcasting\Sse\SseTokenIssuer;

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

        // Laravel 13 binds creator closures to the BroadcastManager (self::,
        // static:: and $this then mean the manager): this one names its class.
        $this->app->make(BroadcastManager::class)->extend('scada', static fn ($app, array $config) => ScadaBroadcaster::fromConfig($app, $config));

        $this->flushQueueWorkers();
        $this->registerUserAuthenticationRoute();
        $this->registerDashboardRoute();
        // After every provider booted (and Laravel 11+'s withRouting(channels:)
        // registered /broadcasting/auth), so its middleware can be copied.
        $this->app->booted(fn () => $this->registerSseTokenRoute());

        if ($this->app->runningInConsole()) {
            $this->publishes([
                __DIR__ . '/../config/scada-broadcasting.php' => $this->app->configPath('scada-broadcasting.php'),
            ], ['scada-broadcasting', 'scada-broadcasting-config']);
            // The static dashboard, for a web server to serve (the opt-in route serves the same files).
            $this->publishes([
                DashboardController::root() => $this->app->basePath('public/vendor/scada-broadcast/dashboard'),
            ], 'scada-dashboard');

            $this->commands([
                Console\SidecarCommand::class,
                Console\StatusCommand::class,
                Console\LoadTestCommand::class,
                Console\FlushCommand::class,
                Console\InstallCommand::class,
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

    /**
     * The SSE token issuer: secret `scada-broadcasting.sse.secret`
     * (SCADA_SSE_SECRET, else PUSHER_APP_SECRET), else the secret of the
     * connection that signs /broadcasting/auth (the default one, `scada`,
     * `pusher`); TTL `sse.token_ttl`.
     */
    public static function sseTokenIssuer(ConfigRepository $config): SseTokenIssuer
    {
        return new SseTokenIssuer(self::sseSecret($config), (int) $config->get('scada-broadcasting.sse.token_ttl', 300));
    }

    /**
     * The secret SSE tokens are signed with ('' when there is none): the
     * token route signs with it and `scada:sidecar` hands the same one to the
     * sidecar's [sse], so the two never disagree whatever the connections are named.
     */
    public static function sseSecret(ConfigRepository $config): string
    {
        $secret = (string) $config->get('scada-broadcasting.sse.secret', '');
        if ($secret === '') {
            foreach ([$config->get('broadcasting.default'), 'scada', 'pusher'] as $connection) {
                $secret = is_string($connection) ? (string) $config->get("broadcasting.connections.$connection.secret", '') : '';
                if ($secret !== '') {
                    break;
                }
            }
        }

        return $secret;
    }

    /**
     * POST {sse.token_route} (default /broadcasting/sse-token), on unless the
     * path is empty, behind the same middleware (and exclusions) as the app's
     * /broadcasting/auth, as Broadcast::routes() registered it; 'web' with
     * CSRF verification ON when the app has none (the connector always sends
     * the page's CSRF token; a token for the session's channels must not be
     * obtainable by another site's form); `sse.token_middleware` overrides.
     */
    protected function registerSseTokenRoute(): void
    {
        $config = $this->app['config'];
        $path = $config->get('scada-broadcasting.sse.token_route');
        if (! $path || $this->routesCached()) {
            return;
        }
        $middleware = $config->get('scada-broadcasting.sse.token_middleware');
        $excluded = [];
        if ($middleware === null) {
            // For an app that registered no Broadcast::routes(): 'web' as is, CSRF included (on Laravel 13
            // VerifyCsrfToken extends PreventRequestForgery, so excluding the former would not even take effect).
            $middleware = ['web'];
            foreach ($this->app['router']->getRoutes()->getRoutes() as $route) {
                if (ltrim((string) $route->getActionName(), '\\') === BroadcastController::class . '@authenticate') {
                    $middleware = $route->middleware();
                    $excluded = $route->excludedMiddleware();
                    break;
                }
            }
        }
        Route::post($path, SseTokenController::class)->middleware((array) $middleware)->withoutMiddleware($excluded);
    }

    /** GET {dashboard.route} and its files, when the app opts in (a path in `dashboard.route`). */
    protected function registerDashboardRoute(): void
    {
        $path = $this->app['config']->get('scada-broadcasting.dashboard.route');
        if (! $path || $this->routesCached()) {
            return;
        }
        $path = '/' . trim((string) $path, '/');
        $middleware = (array) $this->app['config']->get('scada-broadcasting.dashboard.middleware', ['web']);
        Route::get($path, [DashboardController::class, 'page'])->middleware($middleware);
        Route::get($path . '/{path}', [DashboardController::class, 'file'])->where('path', '.+')->middleware($middleware);
    }

    protected function registerUserAuthenticationRoute(): void
    {
        $path = $this->app['config']->get('scada-broadcasting.user_authentication_route');
        if ($path && ! $this->routesCached()) {
            Route::post($path, UserAuthenticationController::class)
                ->middleware($this->app['config']->get('scada-broadcasting.user_authentication_middleware', ['web']));
        }
    }

    /** routesAreCached() without needing the `files` binding a minimal app may lack. */
    private function routesCached(): bool
    {
        return is_file($this->app->getCachedRoutesPath());
    }
}
