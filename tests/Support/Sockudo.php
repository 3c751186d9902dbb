<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A real Sockudo (Pusher-protocol server) on a free loopback port, with one
 * app. It verifies every request signature and enforces its limits.
 */
final class Sockudo
{
    public const APP_ID = 'scada-app';
    public const KEY = 'scada-key';
    public const SECRET = 'scada-secret-for-tests';

    public readonly int $port;
    private ?Process $process = null;

    /** @param array<string,string> $env extra Sockudo settings */
    public function __construct(private string $dir, private array $env = [], ?int $port = null)
    {
        $this->port = $port ?? Processes::freePort();
        $this->start();
    }

    public static function binary(): string
    {
        foreach ([getenv('SOCKUDO_BIN') ?: '', (getenv('HOME') ?: '/root') . '/.cargo/bin/sockudo', '/usr/local/bin/sockudo'] as $bin) {
            if ($bin !== '' && is_executable($bin)) {
                return $bin;
            }
        }
        throw new \RuntimeException('sockudo not found; run tests/bin/install-deps.sh (cargo install sockudo --version 5.2.0)');
    }

    public function start(): void
    {
        $this->process = new Process([self::binary()], $this->dir . "/sockudo-{$this->port}.log", array_merge([
            'SOCKUDO_DEFAULT_APP_ID' => self::APP_ID,
            'SOCKUDO_DEFAULT_APP_KEY' => self::KEY,
            'SOCKUDO_DEFAULT_APP_SECRET' => self::SECRET,
            'HOST' => '127.0.0.1',
            'PORT' => (string)$this->port,
            'RATE_LIMITER_ENABLED' => 'false',
            'METRICS_ENABLED' => 'false',
            'SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND' => '1000000',
            'SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE' => '1000',
            'LOG_COLORS_ENABLED' => 'false',
            'SOCKUDO_DEFAULT_APP_ENABLE_USER_AUTHENTICATION' => 'true',
        ], $this->env));
        Processes::waitFor(fn() => Processes::tcpOpen($this->port), 20, "sockudo on port {$this->port}");
    }

    public function stop(): void
    {
        $this->process?->kill();
        $this->process = null;
    }

    /** The sidecar's environment for this server, with Laravel's names. */
    public function pusherEnv(array $extra = []): array
    {
        return array_merge([
            'PUSHER_APP_ID' => self::APP_ID,
            'PUSHER_APP_KEY' => self::KEY,
            'PUSHER_APP_SECRET' => self::SECRET,
            'PUSHER_HOST' => '127.0.0.1',
            'PUSHER_PORT' => (string)$this->port,
            'PUSHER_SCHEME' => 'http',
        ], $extra);
    }

    public function __destruct()
    {
        $this->stop();
    }
}
