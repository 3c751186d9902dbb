<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * What the chaos suites share: producer processes with ids they can be held
 * to, their reports, counting what a Redis subscriber received, and the
 * CHAOS figure lines the README's reliability tables quote.
 */
trait ChaosScenarios
{
    /**
     * `tests/bin/producer.php` processes: $n producers of $count events over $channels channels at $rate/s.
     * @param array<string,string> $env on top of the sidecar's
     * @return list<Process>
     */
    private function producers(int $n, int $count, int $channels, float $rate, ?string $stallFile = null, array $env = [], int $firstId = 0): array
    {
        $procs = [];
        for ($p = $firstId; $p < $firstId + $n; $p++) {
            $cmd = [PHP_BINARY, ...Processes::extensionArgs(), Processes::root() . '/tests/bin/producer.php', (string)$p, (string)$count, (string)$channels, (string)$rate];
            if ($stallFile !== null) {
                $cmd[] = $stallFile;
            }
            $procs[] = new Process($cmd, "$this->dir/producer-$p.log", array_merge($this->sidecar->env(), $env));
        }

        return $procs;
    }

    /** @param list<Process> $procs */
    private function reports(array $procs, float $timeout = 120): array
    {
        $out = [];
        foreach ($procs as $p) {
            $this->assertSame(0, $p->wait($timeout), $p->output());
            $lines = array_filter(explode("\n", trim($p->output())), fn ($l) => str_starts_with($l, '{'));
            $out[] = json_decode((string)end($lines), true);
        }

        return $out;
    }

    /** [unique ids, duplicates, in order per (channel, producer)] of Redis messages or pusher-js events. */
    private static function ids(array $payloads): array
    {
        $seen = [];
        $dupes = 0;
        $last = [];
        $ordered = true;
        foreach ($payloads as [$channel, $data]) {
            $key = $data['p'] . ':' . $data['i'];
            if (isset($seen[$key])) {
                $dupes++; // a redelivery: order is judged on first deliveries
                continue;
            }
            $seen[$key] = true;
            $stream = "$channel/{$data['p']}";
            $ordered = $ordered && (!isset($last[$stream]) || $data['i'] > $last[$stream]);
            $last[$stream] = $data['i'];
        }

        return [count($seen), $dupes, $ordered];
    }

    private static function redisPayloads(array $messages): array
    {
        return array_map(fn ($m) => [$m['channel'], json_decode($m['message'], true)['data']], $messages);
    }

    private static function figure(string $scenario, array $figures): void
    {
        $parts = [];
        foreach ($figures as $k => $v) {
            $parts[] = "$k=" . (is_float($v) ? round($v, 2) : (is_array($v) ? json_encode($v) : $v));
        }
        fwrite(STDERR, "\nCHAOS $scenario: " . implode(' ', $parts) . "\n");
    }

    private function waitUnique(Subscriber $sub, int $want, float $seconds): array
    {
        $ids = [0, 0, true];
        Processes::waitFor(function () use ($sub, $want, &$ids) {
            $ids = self::ids(self::redisPayloads($sub->all(0)));
            return $ids[0] >= $want;
        }, $seconds, "$want unique events (have {$ids[0]})");

        return self::ids(self::redisPayloads($sub->all(0.5)));
    }
}
