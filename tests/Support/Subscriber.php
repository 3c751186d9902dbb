<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A Redis PSUBSCRIBE client in its own process (tests/bin/subscribe.php),
 * recording every message byte for byte as JSON lines.
 */
final class Subscriber
{
    private Process $process;
    private string $file;
    private int $offset = 0;
    /** @var list<array{channel:string,message:string,at:float}> */
    private array $messages = [];

    private int $ready = 0;

    public function __construct(string $dir, int $port, string $pattern = '*', bool $reconnect = false, string $host = '127.0.0.1')
    {
        $this->file = $dir . '/sub-' . bin2hex(random_bytes(4)) . '.jsonl';
        touch($this->file);
        $cmd = [PHP_BINARY, '-n', __DIR__ . '/../bin/subscribe.php', "$host:$port", $pattern, $this->file];
        if ($reconnect) {
            $cmd[] = '--reconnect';
        }
        $this->process = new Process($cmd, $this->file . '.log');
        Processes::waitFor(fn() => str_contains((string)file_get_contents($this->file), '"ready"'), 10, 'subscriber ready');
        $this->read();
        $this->messages = [];
        $this->ready = 1;
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
            $m = json_decode($line, true);
            if (isset($m['ready'])) {
                $this->ready++;
            }
            if (isset($m['channel'])) {
                $this->messages[] = ['channel' => $m['channel'], 'message' => base64_decode($m['message']), 'at' => $m['at'] ?? null];
            }
        }
    }

    /** How many times the subscription was (re)established. */
    public function subscriptions(): int
    {
        $this->read();

        return $this->ready;
    }

    /** @return list<array{channel:string,message:string}> at least $n messages, waiting up to $seconds. */
    public function waitFor(int $n, float $seconds = 10.0): array
    {
        Processes::waitFor(function () use ($n) {
            $this->read();
            return count($this->messages) >= $n;
        }, $seconds, "$n messages (have " . count($this->messages) . ')');
        return $this->messages;
    }

    /** Everything received so far, after waiting $settle seconds for stragglers. */
    public function all(float $settle = 0.3): array
    {
        usleep((int)($settle * 1e6));
        $this->read();
        return $this->messages;
    }

    public function __destruct()
    {
        $this->process->kill();
    }
}
