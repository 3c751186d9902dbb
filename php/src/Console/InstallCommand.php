<?php

namespace Scada\Broadcasting\Console;

use Illuminate\Console\Command;
use Illuminate\Support\Facades\Artisan;

/**
 * Sets a Laravel app up for the `scada` driver, as `install:broadcasting`
 * does for Reverb or Pusher: the connection in config/broadcasting.php
 * (publishing Laravel's file first if the app has none), the .env keys, and
 * the channel routes (routes/channels.php, registered by bootstrap/app.php's
 * withRouting(channels:) on Laravel 11+ or BroadcastServiceProvider before).
 * Running it again changes nothing; it says what it changed.
 */
class InstallCommand extends Command
{
    protected $signature = 'scada:install {--socket=/run/scada-broadcast/sidecar.sock : The sidecar socket written to SCADA_SIDECAR_SOCKET when .env has none}';

    protected $description = 'Add the scada broadcasting connection, its .env keys and the channel routes to this app';

    /** @var list<string> */
    private array $changes = [];

    public function handle(): int
    {
        try {
            // The connection first: without it, BROADCAST_*=scada in .env would
            // make every later boot fail in BroadcastManager, so .env is only
            // touched once config/broadcasting.php has the connection.
            $this->broadcastingConfig();
            $this->env();
            $this->channelRoutes();
        } catch (InstallFailed $e) {
            foreach ($this->changes as $change) {
                $this->line("  changed  $change");
            }
            $this->error('scada:install: ' . $e->getMessage());

            return self::FAILURE;
        }

        if ($this->changes === []) {
            $this->line('scada:install: nothing to change, the app is already set up for the scada driver.');
        } else {
            foreach ($this->changes as $change) {
                $this->line("  changed  $change");
            }
            $this->line(sprintf('scada:install: %d change%s. Set PUSHER_APP_KEY / PUSHER_APP_SECRET to your WebSocket server\'s app credentials, then run `php artisan scada:sidecar`.', count($this->changes), count($this->changes) === 1 ? '' : 's'));
        }

        return self::SUCCESS;
    }

    /** config/broadcasting.php with a `scada` connection. */
    private function broadcastingConfig(): void
    {
        $path = $this->laravel->configPath('broadcasting.php');
        if (! is_file($path)) {
            if (array_key_exists('config:publish', Artisan::all())) {
                // Laravel 11+: the framework's own file, as install:broadcasting publishes it.
                $this->callSilently('config:publish', ['name' => 'broadcasting']);
            }
            if (! is_file($path)) {
                $this->copy(__DIR__ . '/../../stubs/install/broadcasting.php', $path);
            }
            $this->changes[] = 'config/broadcasting.php: published (the app had none)';
        }
        $config = $this->read($path);
        if (preg_match('/[\'"]scada[\'"]\s*=>\s*\[/', $config)) {
            return;
        }
        if (! preg_match('/^[ \t]*[\'"]connections[\'"]\s*=>\s*\[[^\n]*\n/m', $config, $m, PREG_OFFSET_CAPTURE)) {
            throw new InstallFailed("could not find a 'connections' => [ array in $path: add the scada connection by hand (see the README's Laravel setup), then run scada:install again. .env was not changed.");
        }
        $at = $m[0][1] + strlen($m[0][0]);
        $block = "\n" . $this->read(__DIR__ . '/../../stubs/install/connection.php');
        $this->write($path, substr($config, 0, $at) . $block . substr($config, $at));
        $this->changes[] = "config/broadcasting.php: added the 'scada' connection";
    }

    /** The default connection and the sidecar/Pusher keys in .env. */
    private function env(): void
    {
        $path = $this->laravel->basePath('.env');
        $created = ! is_file($path);
        $env = $created ? '' : $this->read($path);
        $before = $env;
        $variable = $this->defaultConnectionVariable();

        $env = $this->setVariable($env, $variable, 'scada', true);
        $env = $this->setVariable($env, 'SCADA_SIDECAR_SOCKET', (string) $this->option('socket'), false);
        foreach (['PUSHER_APP_ID' => '', 'PUSHER_APP_KEY' => '', 'PUSHER_APP_SECRET' => '', 'PUSHER_HOST' => '', 'PUSHER_PORT' => '443', 'PUSHER_SCHEME' => 'https'] as $name => $default) {
            $env = $this->setVariable($env, $name, $default, false);
        }
        if ($env !== $before) {
            $this->write($path, $env);
            if ($created) {
                $this->changes[] = '.env: created';
            }
        }
    }

    /** BROADCAST_CONNECTION (Laravel 11+) or BROADCAST_DRIVER (up to 10): whichever the app's config reads. */
    private function defaultConnectionVariable(): string
    {
        $config = (string) @file_get_contents($this->laravel->configPath('broadcasting.php'));
        if (preg_match('/env\(\s*[\'"](BROADCAST_CONNECTION|BROADCAST_DRIVER)[\'"]/', $config, $m)) {
            return $m[1];
        }

        return version_compare($this->laravel->version(), '11.0', '>=') ? 'BROADCAST_CONNECTION' : 'BROADCAST_DRIVER';
    }

    private function setVariable(string $env, string $name, string $value, bool $overwrite): string
    {
        $line = $name . '=' . $value;
        if (preg_match('/^' . preg_quote($name, '/') . '=(.*)$/m', $env, $m)) {
            $current = trim($m[1], " \t\"'");
            if (! $overwrite || $current === $value) {
                return $env;
            }
            $this->changes[] = sprintf('.env: %s=%s (was %s)', $name, $value, $current === '' ? 'empty' : $current);

            return (string) preg_replace('/^' . preg_quote($name, '/') . '=.*$/m', $line, $env, 1);
        }
        $this->changes[] = ".env: added $line";

        return $env . ($env === '' || str_ends_with($env, "\n") ? '' : "\n") . $line . "\n";
    }

    /** routes/channels.php, and what loads it. */
    private function channelRoutes(): void
    {
        $routes = $this->laravel->basePath('routes/channels.php');
        if (! is_file($routes)) {
            if (! is_dir(dirname($routes)) && ! @mkdir(dirname($routes), 0755, true) && ! is_dir(dirname($routes))) {
                throw new InstallFailed('could not create ' . dirname($routes) . ': ' . self::lastError());
            }
            $this->copy(__DIR__ . '/../../stubs/install/channels.php', $routes);
            $this->changes[] = 'routes/channels.php: created (channel authorization rules)';
        }

        $bootstrap = $this->laravel->bootstrapPath('app.php');
        $content = is_file($bootstrap) ? $this->read($bootstrap) : '';
        if (str_contains($content, '->withRouting(') || str_contains($content, '->withBroadcasting(')) {
            $this->registerInBootstrap($bootstrap, $content);
        } else {
            $this->enableBroadcastServiceProvider();
        }
    }

    /** Laravel 11+: withRouting(channels: ...) in bootstrap/app.php, as install:broadcasting writes it. */
    private function registerInBootstrap(string $path, string $content): void
    {
        $channels = "channels: __DIR__.'/../routes/channels.php',";
        if (preg_match('/^\s*channels:/m', $content) || str_contains($content, '->withBroadcasting(')) {
            return;
        }
        if (str_contains($content, '// channels: ')) {
            $updated = str_replace('// channels: ', 'channels: ', $content);
        } elseif (preg_match("/^([ \\t]*)commands: __DIR__\\s*\\.\\s*'\\/..\\/routes\\/console.php',[^\\n]*\\n/m", $content, $m)) {
            $updated = str_replace($m[0], $m[0] . $m[1] . $channels . "\n", $content);
        } else {
            $updated = str_replace('->withRouting(', "->withRouting(\n        $channels", $content);
        }
        $this->write($path, $updated);
        $this->changes[] = 'bootstrap/app.php: withRouting(channels: routes/channels.php) registers /broadcasting/auth and the channel rules';
    }

    /** Laravel 8-10: uncomment App\Providers\BroadcastServiceProvider in config/app.php. */
    private function enableBroadcastServiceProvider(): void
    {
        $app = $this->laravel->configPath('app.php');
        $config = is_file($app) ? $this->read($app) : '';
        if (preg_match('/^\s*\/\/\s*App\\\\Providers\\\\BroadcastServiceProvider::class/m', $config)) {
            $this->write($app, (string) preg_replace('/^(\s*)\/\/\s*(App\\\\Providers\\\\BroadcastServiceProvider::class)/m', '$1$2', $config, 1));
            $this->changes[] = 'config/app.php: enabled App\\Providers\\BroadcastServiceProvider (Broadcast::routes() and routes/channels.php)';
        } elseif (! str_contains($config, 'BroadcastServiceProvider::class')) {
            $this->warn('Register Broadcast::routes() and require routes/channels.php (App\\Providers\\BroadcastServiceProvider) so /broadcasting/auth exists.');
        }
    }
    private function read(string $path): string
    {
        $content = @file_get_contents($path);
        if ($content === false) {
            throw new InstallFailed("could not read $path: " . self::lastError());
        }

        return $content;
    }

    /** Writes the whole file or fails (a short write is a failure too). */
    private function write(string $path, string $content): void
    {
        if (@file_put_contents($path, $content) !== strlen($content)) {
            throw new InstallFailed("could not write $path: " . self::lastError());
        }
    }

    private function copy(string $from, string $to): void
    {
        if (! @copy($from, $to)) {
            throw new InstallFailed("could not create $to: " . self::lastError());
        }
    }

    private static function lastError(): string
    {
        return error_get_last()['message'] ?? 'unknown error';
    }
}
