<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;

/**
 * Host-wide throttling and aggregation: every PHP process sending to a
 * channel shares one window in the sidecar; nothing is lost from the
 * statistics.
 */
final class ThrottleTest extends IntegrationTestCase
{
    /** The deterministic value of sample $i of producer $p (8 series). */
    private const VALUE = '(($p * 7919 + $i * 31) % 2001 - 1000) / 8';

    public function test_four_processes_share_one_window_and_every_sample_is_counted(): void
    {
        $this->startPusherStack(withRedis: true);
        $sub = $this->subscribe('laravel_database_plant-agg');
        $client = $this->pusherClient(['plant-agg']);
        $producers = [];
        for ($p = 0; $p < 4; $p++) {
            $producers[] = $this->php(sprintf(<<<'PHP'
                <?php
                // 50,000 samples over 8 series in about 2 s, to one channel, 100 ms windows.
                $p = %d;
                $s = new Scada\Broadcasting\ScadaBroadcastingService();
                $first = microtime(true);
                for ($i = 0; $i < 50000; $i++) {
                    if ($i %% 250 === 0) {
                        $due = $first + $i / 25000;
                        if (($wait = $due - microtime(true)) > 0) { usleep((int)($wait * 1e6)); }
                    }
                    $ok = $s->broadcastAggregatedData(['channel' => 'PLC-' . ($i %% 8), 'value' => %s, 'unit' => 'bar'], 'plant-agg', 100);
                    if (!$ok) { exit(3); }
                }
                $last = microtime(true);
                $s->flush();
                echo json_encode(['first' => $first, 'last' => $last, 'stats' => $s->stats()]);
                PHP, $p, self::VALUE));
        }
        $runs = [];
        foreach ($producers as $proc) {
            $this->assertSame(0, $proc->wait(60), $proc->output());
            $runs[] = json_decode(trim($proc->output()), true);
        }
        $first = min(array_column($runs, 'first'));
        $last = max(array_column($runs, 'last'));

        // The expected statistics, computed from the same deterministic inputs.
        $want = [];
        for ($p = 0; $p < 4; $p++) {
            for ($i = 0; $i < 50000; $i++) {
                $v = eval('return ' . self::VALUE . ';');
                $w = &$want['PLC-' . ($i % 8)];
                $w ??= ['count' => 0, 'sum' => 0.0, 'min' => INF, 'max' => -INF];
                $w['count']++;
                $w['sum'] += $v;
                $w['min'] = min($w['min'], $v);
                $w['max'] = max($w['max'], $v);
                unset($w);
            }
        }

        // Wait until every sample is in some window's statistics.
        $got = [];
        Processes::waitFor(function () use ($sub, &$got) {
            $got = $this->sumWindows($sub->all(0));
            return array_sum(array_column($got, 'count')) >= 200000;
        }, 20, 'all 200,000 samples in the windows');
        $events = $sub->all(0.5);
        $got = $this->sumWindows($events);

        $duration = $last - $first;
        $this->assertLessThanOrEqual((int) ceil($duration / 0.1) + 2, count($events), sprintf('%d events in %.2f s', count($events), $duration));
        ksort($want);
        ksort($got);
        $this->assertSame(array_keys($want), array_keys($got));
        foreach ($want as $series => $w) {
            $this->assertSame($w['count'], $got[$series]['count'], "count of $series");
            $this->assertEqualsWithDelta($w['sum'], $got[$series]['sum'], 1e-6, "sum of $series");
            $this->assertSame($w['min'], $got[$series]['min'], "min of $series");
            $this->assertSame($w['max'], $got[$series]['max'], "max of $series");
            $this->assertEqualsWithDelta($w['sum'] / $w['count'], $got[$series]['sum'] / $got[$series]['count'], 1e-9, "average of $series");
        }
        // Every event carries its window; each window's statistics are self-consistent.
        foreach ($events as $e) {
            $d = json_decode($e['message'], true)['data'];
            $this->assertSame(100, $d['window']['throttle_ms']);
            $this->assertSame($d['window']['samples'], array_sum(array_column($d['data'], 'count')));
            foreach ($d['data'] as $s) {
                $this->assertEqualsWithDelta($s['sum'] / $s['count'], $s['average'], 1e-9);
                $this->assertLessThanOrEqual($s['max'], $s['min']);
            }
        }
        // The trailing edge: the last window arrives within 100 ms + 50 ms of the last sample.
        $lastAt = max(array_column($events, 'at'));
        $this->assertLessThanOrEqual(0.150, $lastAt - $last, sprintf('final window %.0f ms after the last sample', ($lastAt - $last) * 1000));

        // The browser sees the same windows through Sockudo.
        $browser = $client->waitFor(count($events), 15);
        $this->assertSame(200000, array_sum(array_map(fn ($e) => $e['data']['window']['samples'], $browser)));
    }

    /** Per-series totals over every window's statistics. */
    private function sumWindows(array $events): array
    {
        $out = [];
        foreach ($events as $e) {
            foreach (json_decode($e['message'], true)['data']['data'] as $series => $s) {
                $o = &$out[$series];
                $o ??= ['count' => 0, 'sum' => 0.0, 'min' => INF, 'max' => -INF];
                $o['count'] += $s['count'];
                $o['sum'] += $s['sum'];
                $o['min'] = min($o['min'], $s['min']);
                $o['max'] = max($o['max'], $s['max']);
                unset($o);
            }
        }

        return $out;
    }

    public function test_throttle_rules_aggregate_and_conflate_events_from_the_laravel_driver(): void
    {
        $this->startStack(['SCADA_THROTTLE' => 'live-*=200:aggregate;status-*=200:latest']);
        $sub = $this->subscribe();
        $p = $this->php(<<<'PHP'
            <?php
            $s = new Scada\Broadcasting\ScadaBroadcastingService();
            // What the Laravel driver sends for ScadaDataReceived events, 2000 of them in ~1 s.
            for ($i = 0; $i < 2000; $i++) {
                $s->broadcast('live-plant', 'scada.data.received', ['data' => ['channel' => 'PLC-' . ($i % 2), 'value' => $i], 'timestamp' => 't', 'channel' => 'live-plant']);
                $s->broadcast('status-line', 'line.status', ['n' => $i]);
                $s->broadcast('orders', 'order.created', ['n' => $i]);
                usleep(500);
            }
            $s->flush();
            PHP);
        $this->assertSame(0, $p->wait(60), $p->output());
        Processes::waitFor(fn () => count(array_filter($sub->all(0), fn ($m) => $m['channel'] === 'laravel_database_orders')) >= 2000, 20, 'unthrottled events');
        usleep(600000);
        $all = $sub->all(0.2);
        $by = [];
        foreach ($all as $m) {
            $by[$m['channel']][] = json_decode($m['message'], true);
        }
        $this->assertCount(2000, $by['laravel_database_orders'], 'channels without a rule are untouched');
        // Aggregated: far fewer events, every sample counted.
        $live = $by['laravel_database_live-plant'];
        $this->assertLessThan(30, count($live));
        $this->assertSame(2000, array_sum(array_map(fn ($e) => $e['data']['window']['samples'], $live)));
        $this->assertSame(1000, array_sum(array_map(fn ($e) => $e['data']['data']['PLC-0']['count'] ?? 0, $live)));
        // Latest wins: far fewer events, and the very last one is delivered.
        $status = $by['laravel_database_status-line'];
        $this->assertLessThan(30, count($status));
        $this->assertSame(1999, end($status)['data']['n']);
        $this->assertSame('line.status', end($status)['event']);
    }
}
