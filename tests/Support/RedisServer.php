<?php

namespace Scada\Broadcasting\Tests\Support;

/** A real redis-server on a free loopback port. */
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
            ['redis-server', '--port', (string)$this->port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
            $this->dir . "/redis-{$this->port}.log"
        );
        Processes::waitFor(fn() => Processes::tcpOpen($this->port), 10, "redis-server on port {$this->port}");
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
