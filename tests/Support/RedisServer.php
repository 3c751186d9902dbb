<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A real Redis server on a free loopback port: redis-server, or the one
 * SCADA_REDIS_SERVER names (valkey-server on the sid stack).
 */
final class RedisServer
{
    public readonly int $port;
    private ?Process $process = null;

    public function __construct(private string $dir, ?int $port = null)
    {
        $this->port = $port ?? Processes::freePort();
        $this->start();
    }

    public function start(): void
    {
        $this->process = new Process(
            [self::binary(), '--port', (string)$this->port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
            $this->dir . "/redis-{$this->port}.log"
        );
        Processes::waitFor(fn() => Processes::tcpOpen($this->port), 10, "redis-server on port {$this->port}");
    }

    public static function binary(): string
    {
        return getenv('SCADA_REDIS_SERVER') ?: 'redis-server';
    }

    public function stop(): void
    {
        $this->process?->kill();
        $this->process = null;
    }

    public function client(): \Redis
    {
        $r = new \Redis();
        $r->connect('127.0.0.1', $this->port, 2.0);
        return $r;
    }

    public function __destruct()
    {
        $this->stop();
    }
}
