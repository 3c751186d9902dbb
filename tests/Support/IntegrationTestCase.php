<?php

namespace Scada\Broadcasting\Tests\Support;

use PHPUnit\Framework\TestCase;
use Scada\Broadcasting\ScadaBroadcastingService;

/**
 * Base for tests against the real stack: each test gets its own temp dir,
 * redis-server and sidecar; everything is stopped in tearDown. A failing
 * test prints the sidecar's log.
 */
abstract class IntegrationTestCase extends TestCase
{
    protected string $dir;
    protected ?RedisServer $redis = null;
    protected ?Sidecar $sidecar = null;
    protected ?Sockudo $sockudo = null;
    protected ?AuthServer $auth = null;

    protected function setUp(): void
    {
        $this->dir = Processes::tempDir((new \ReflectionClass($this))->getShortName());
    }

    protected function tearDown(): void
    {
        if (PhpUnitCompat::failed($this) && $this->sidecar !== null) {
            fwrite(STDERR, "\n--- sidecar log ---\n" . substr($this->sidecar->log(), -4000) . "\n");
        }
        $this->sidecar?->kill();
        $this->redis?->stop();
        $this->sockudo?->stop();
        $this->sidecar = null;
        $this->redis = null;
        $this->sockudo = null;
        $this->auth = null;
        if (!PhpUnitCompat::failed($this)) {
            Processes::removeDir($this->dir);
        }
    }

    /** Starts redis and a sidecar delivering to it (REDIS_* env, like Laravel). */
    protected function startStack(array $sidecarEnv = []): void
    {
        $this->redis = new RedisServer($this->dir);
        $this->sidecar = new Sidecar($this->dir, array_merge([
            'REDIS_HOST' => '127.0.0.1',
            'REDIS_PORT' => (string)$this->redis->port,
        ], $sidecarEnv));
    }

    /** Starts Sockudo and a sidecar delivering to it (PUSHER_* env, like Laravel), optionally Redis too. */
    protected function startPusherStack(array $sidecarEnv = [], bool $withRedis = false, ?string $configToml = null): void
    {
        $this->sockudo = new Sockudo($this->dir);
        $env = $this->sockudo->pusherEnv(['SCADA_PUSHER_IDEMPOTENCY_KEY' => 'true']);
        if ($withRedis) {
            $this->redis = new RedisServer($this->dir);
            $env += ['REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string)$this->redis->port];
        }
        $this->sidecar = new Sidecar($this->dir, array_merge($env, $sidecarEnv), $configToml);
    }

    /** @param list<string> $channels */
    protected function pusherClient(array $channels, bool $withAuth = false, bool $withUserAuth = false): PusherClient
    {
        if (($withAuth || $withUserAuth) && $this->auth === null) {
            $this->auth = new AuthServer($this->dir);
        }
        return new PusherClient($this->dir, $this->sockudo->port, $channels,
            $withAuth ? $this->auth->url() : null, $withUserAuth ? $this->auth->url('/broadcasting/user-auth') : null);
    }

    protected function service(array $options = []): ScadaBroadcastingService
    {
        return new ScadaBroadcastingService(array_merge([
            'socket' => $this->sidecar->socket,
            'spool_dir' => $this->sidecar->spoolDir,
        ], $options));
    }

    protected function subscribe(string $pattern = '*'): Subscriber
    {
        return new Subscriber($this->dir, $this->redis->port, $pattern);
    }

    /** The test Laravel app, configured like a real app's .env for the running stack. */
    protected function laravel(array $env = []): TestApp
    {
        $base = [TestApp::broadcastEnv() => 'scada', 'QUEUE_CONNECTION' => 'redis'];
        if ($this->sidecar !== null) {
            $base['SCADA_SIDECAR_SOCKET'] = $this->sidecar->socket;
            $base['SCADA_SPOOL_DIR'] = $this->sidecar->spoolDir;
        }
        if ($this->redis !== null) {
            $base += ['REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string) $this->redis->port];
        }
        if ($this->sockudo !== null) {
            $base += $this->sockudo->pusherEnv();
        }

        return new TestApp($this->dir, array_merge($base, $env));
    }

    /** Runs a PHP script with the extension in a separate process. */
    protected function php(string $code, array $env = [], string $name = 'producer'): Process
    {
        $file = $this->dir . "/$name-" . bin2hex(random_bytes(3)) . '.php';
        file_put_contents($file, $code);
        return new Process(
            [PHP_BINARY, ...Processes::extensionArgs(), $file],
            $file . '.log',
            array_merge($this->sidecar?->env() ?? [], $env)
        );
    }
}
