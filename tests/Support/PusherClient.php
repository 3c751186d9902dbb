<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A real pusher-js client (tests/js/client.js under node) subscribed to
 * channels, recording every event it receives.
 */
final class PusherClient
{
    private Process $process;
    private string $file;
    private int $offset = 0;
    /** @var list<array> */
    private array $lines = [];

    /** @param list<string> $channels */
    public function __construct(string $dir, int $port, array $channels, ?string $authUrl = null, ?string $userAuthUrl = null, ?string $authHeader = null,
        string $host = '127.0.0.1', string $key = Sockudo::KEY)
    {
        $this->file = $dir . '/pusher-js-' . bin2hex(random_bytes(4)) . '.jsonl';
        touch($this->file);
        $cmd = ['node', Processes::root() . '/tests/js/client.js', '--host', $host, '--port', (string)$port,
            '--key', $key, '--channels', implode(',', $channels), '--out', $this->file];
        if ($authUrl !== null) {
            array_push($cmd, '--auth', $authUrl);
        }
        if ($userAuthUrl !== null) {
            array_push($cmd, '--user-auth', $userAuthUrl);
        }
        if ($authHeader !== null) {
            array_push($cmd, '--auth-header', $authHeader);
        }
        $this->process = new Process($cmd, $this->file . '.log', ['NODE_PATH' => Processes::root() . '/tests/js/node_modules']);
        Processes::waitFor(function () use ($channels) {
            $this->read();
            $errors = array_filter($this->lines, fn($l) => isset($l['error']));
            if ($errors) {
                throw new \RuntimeException('pusher-js: ' . json_encode(array_values($errors)) . "\n" . $this->process->output());
            }
            return count(array_filter($this->lines, fn($l) => isset($l['subscribed']))) >= count($channels);
        }, 20, 'pusher-js subscriptions to ' . implode(',', $channels) . "\n" . $this->process->output());
    }

    private function read(): void
    {
        $data = (string)file_get_contents($this->file, false, null, $this->offset);
        $end = strrpos($data, "\n");
        if ($end === false) {
            return;
        }
        $this->offset += $end + 1;
        foreach (explode("\n", substr($data, 0, $end)) as $line) {
            $this->lines[] = json_decode($line, true);
        }
    }

    /** @return list<array{channel:string,event:string,data:mixed,at_ms:int}> */
    public function events(): array
    {
        $this->read();
        return array_values(array_filter($this->lines, fn($l) => isset($l['event'])));
    }

    /** The socket id of the current connection (for exclusion tests). */
    public function socketId(): string
    {
        $this->read();
        $ids = array_values(array_filter(array_map(fn($l) => $l['connected'] ?? null, $this->lines)));
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
        $this->read();
        return array_values(array_filter($this->lines, fn($l) => isset($l['subscribed'])));
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
