<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A deployed stack: Redis, a Pusher-protocol server and a sidecar, described
 * by the environment names an app uses (REDIS_*, PUSHER_*, SCADA_SIDECAR_SOCKET).
 *
 * With SCADA_STACK=external the services already run elsewhere (the Docker
 * Compose stack: other containers, the socket on a shared volume). Otherwise
 * the same stack is started here from real processes, so the suite runs in
 * `make test` too.
 */
final class Stack
{
    public readonly bool $external;
    /** @var array<string,string> */
    public readonly array $env;
    private array $owned = [];

    public function __construct(string $dir)
    {
        $this->external = getenv('SCADA_STACK') === 'external';
        if ($this->external) {
            $env = [];
            foreach (['REDIS_HOST', 'REDIS_PORT', 'PUSHER_APP_ID', 'PUSHER_APP_KEY', 'PUSHER_APP_SECRET', 'PUSHER_HOST', 'PUSHER_PORT', 'PUSHER_SCHEME', 'SCADA_SIDECAR_SOCKET'] as $name) {
                $value = getenv($name);
                if ($value === false || $value === '') {
                    throw new \RuntimeException("SCADA_STACK=external needs $name in the environment");
                }
                $env[$name] = $value;
            }
            $this->env = $env;
            Processes::waitFor(fn () => file_exists($env['SCADA_SIDECAR_SOCKET']), 60, "the sidecar socket {$env['SCADA_SIDECAR_SOCKET']}");
            Processes::waitFor(fn () => self::tcpOpen($env['PUSHER_HOST'], (int) $env['PUSHER_PORT']), 60, 'the Pusher-protocol server');
            Processes::waitFor(fn () => self::tcpOpen($env['REDIS_HOST'], (int) $env['REDIS_PORT']), 60, 'redis');
            return;
        }
        $redis = new RedisServer($dir);
        $sockudo = new Sockudo($dir);
        $sidecar = new Sidecar($dir, $sockudo->pusherEnv([
            'REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string) $redis->port, 'SCADA_PUSHER_IDEMPOTENCY_KEY' => 'true',
        ]));
        $this->owned = [$sidecar, $sockudo, $redis];
        $this->env = $sockudo->pusherEnv([
            'REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string) $redis->port, 'SCADA_SIDECAR_SOCKET' => $sidecar->socket,
        ]);
    }

    public function socket(): string
    {
        return $this->env['SCADA_SIDECAR_SOCKET'];
    }

    /** GET /status from the sidecar's status socket (next to its socket, on the shared volume). */
    public function status(): array
    {
        $s = stream_socket_client('unix://' . dirname($this->socket()) . '/status.sock', $errno, $err, 2.0);
        if ($s === false) {
            throw new \RuntimeException("status socket: $err");
        }
        fwrite($s, "GET /status HTTP/1.0\r\n\r\n");
        $raw = (string) stream_get_contents($s);
        fclose($s);

        return json_decode(explode("\r\n\r\n", $raw, 2)[1] ?? '', true, 512, JSON_THROW_ON_ERROR);
    }

    public function subscribe(string $dir, string $pattern): Subscriber
    {
        return new Subscriber($dir, (int) $this->env['REDIS_PORT'], $pattern, false, $this->env['REDIS_HOST']);
    }

    /** @param list<string> $channels */
    public function pusherClient(string $dir, array $channels, ?string $authUrl = null, ?string $authHeader = null): PusherClient
    {
        return new PusherClient($dir, (int) $this->env['PUSHER_PORT'], $channels, $authUrl, null, $authHeader,
            $this->env['PUSHER_HOST'], $this->env['PUSHER_APP_KEY']);
    }

    /** The test Laravel app configured for this stack, as its .env would. */
    public function laravel(string $dir, array $env = []): TestApp
    {
        return new TestApp($dir, array_merge($this->env, [TestApp::broadcastEnv() => 'scada', 'QUEUE_CONNECTION' => 'redis'], $env));
    }

    private static function tcpOpen(string $host, int $port): bool
    {
        $s = @stream_socket_client("tcp://$host:$port", $e, $m, 0.5);
        if ($s === false) {
            return false;
        }
        fclose($s);

        return true;
    }

    public function stop(): void
    {
        foreach ($this->owned as $service) {
            $service instanceof Sidecar ? $service->kill() : $service->stop();
        }
        $this->owned = [];
    }
}
