<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A real pusher-js client (tests/js/client.js under node) subscribed to
 * channels, recording every event it receives.
 */
final class PusherClient
{
    private Process $process;
    private JsonLinesFile $out;

    /** @param list<string> $channels */
    public function __construct(string $dir, int $port, array $channels, ?string $authUrl = null, ?string $userAuthUrl = null, ?string $authHeader = null,
        string $host = '127.0.0.1', string $key = Sockudo::KEY, ?string $echoEvent = null)
    {
        $this->out = JsonLinesFile::in($dir, 'pusher-js');
        $cmd = ['node', Processes::root() . '/tests/js/client.js', '--host', $host, '--port', (string)$port,
            '--key', $key, '--channels', implode(',', $channels), '--out', $this->out->path];
        if ($authUrl !== null) {
            array_push($cmd, '--auth', $authUrl);
        }
        if ($userAuthUrl !== null) {
            array_push($cmd, '--user-auth', $userAuthUrl);
        }
        if ($authHeader !== null) {
            array_push($cmd, '--auth-header', $authHeader);
        }
        if ($echoEvent !== null) {
            // Subscribed through laravel-echo (Echo.channel()/Echo.private()), listening for $echoEvent.
            array_push($cmd, '--echo', $echoEvent);
        }
        $modules = Processes::root() . '/tests/js/node_modules:' . Processes::root() . '/tests/js/echo-sse/node_modules';
        $this->process = new Process($cmd, $this->out->path . '.log', ['NODE_PATH' => $modules]);
        Processes::waitFor(function () use ($channels) {
            $errors = $this->out->with('error');
            if ($errors) {
                throw new \RuntimeException('pusher-js: ' . json_encode($errors) . "\n" . $this->process->output());
            }
            return count($this->out->with('subscribed')) >= count($channels);
        }, 20, 'pusher-js subscriptions to ' . implode(',', $channels) . "\n" . $this->process->output());
    }

    /** @return list<array{channel:string,event:string,data:mixed,at_ms:int}> */
    public function events(): array
    {
        return $this->out->with('event');
    }

    /** @return list<string> the channels Sockudo answered `pusher:cache_miss` for */
    public function cacheMisses(): array
    {
        return array_map(fn($l) => $l['cache_miss'], $this->out->with('cache_miss'));
    }

    /** The socket id of the current connection (for exclusion tests). */
    public function socketId(): string
    {
        $ids = array_values(array_filter(array_map(fn($l) => $l['connected'] ?? null, $this->out->lines())));
        return (string)end($ids);
    }

    /** How many times subscriptions succeeded (grows after a reconnect). */
    public function subscriptionCount(): int
    {
        return count($this->subscriptions());
    }

    /** Lines about subscriptions (with presence member counts). */
    public function subscriptions(): array
    {
        return $this->out->with('subscribed');
    }

    /** Waits until at least $n events arrived. */
    public function waitFor(int $n, float $seconds = 15.0): array
    {
        Processes::waitFor(fn() => count($this->events()) >= $n, $seconds, "$n pusher-js events (have " . count($this->events()) . ')');
        return $this->events();
    }

    /** Everything received after waiting $settle seconds for stragglers. */
    public function all(float $settle = 0.5): array
    {
        usleep((int)($settle * 1e6));
        return $this->events();
    }

    public function __destruct()
    {
        $this->process->kill();
    }
}
