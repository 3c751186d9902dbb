<?php

namespace Scada\Broadcasting\Tests\Integration;

use Illuminate\Broadcasting\Broadcasters\RedisBroadcaster;
use Scada\Broadcasting\InvalidBroadcastException;
use Scada\Broadcasting\Tests\Support\Events\ScadaDataReceived;
use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\LaravelApp;

/**
 * PHP → extension → real sidecar → real Redis: subscribers receive exactly
 * what Laravel's RedisBroadcaster would have published.
 */
final class ExtensionDeliversToRedisTest extends IntegrationTestCase
{
    private const ISO = '/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/';

    private function laravelBroadcaster(): RedisBroadcaster
    {
        $app = LaravelApp::make($this->redis->port);
        return $app->make(\Illuminate\Contracts\Broadcasting\Factory::class)->connection('redis');
    }

    private static function withoutTimestamp(string $message): string
    {
        return preg_replace('/"timestamp":"[^"]*"/', '"timestamp":"T"', $message);
    }

    public function test_broadcast_data_publishes_the_seeds_scada_data_received_event_as_laravel_does(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $sample = ['id' => 7, 'channel' => 'PLC-1', 'tag' => 'temperature', 'value' => 21.5, 'unit' => '°C', 'quality' => 'good', 'path' => 'a/b'];

        // What Laravel publishes for the seed's event (BroadcastEvent merges `socket` into broadcastWith()).
        $event = new ScadaDataReceived($sample, 'scada-realtime');
        $this->laravelBroadcaster()->broadcast([$event->channel], $event->broadcastAs(), array_merge($event->broadcastWith(), ['socket' => null]));
        [$laravel] = $sub->waitFor(1);

        $service = $this->service();
        $before = microtime(true);
        $this->assertTrue($service->broadcastData($sample, 'scada-realtime'));
        [, $ours] = $sub->waitFor(2);

        $this->assertSame('laravel_database_scada-realtime', $ours['channel']);
        $this->assertSame(self::withoutTimestamp($laravel['message']), self::withoutTimestamp($ours['message']));
        $decoded = json_decode($ours['message'], true);
        $this->assertSame('scada.data.received', $decoded['event']);
        $this->assertSame($sample, $decoded['data']['data']);
        $this->assertSame('scada-realtime', $decoded['data']['channel']);
        $this->assertNull($decoded['data']['socket']);
        $this->assertNull($decoded['socket']);
        $this->assertMatchesRegularExpression(self::ISO, $decoded['data']['timestamp']);
        $sent = (new \DateTimeImmutable($decoded['data']['timestamp']))->format('U.u');
        $this->assertEqualsWithDelta($before, (float)$sent, 2.0);
    }

    public function test_broadcast_data_uses_the_default_channel(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $this->assertTrue($this->service()->broadcastData(42));
        [$m] = $sub->waitFor(1);
        $this->assertSame('laravel_database_scada-data', $m['channel']);
        $this->assertStringStartsWith('{"event":"scada.data.received","data":{"data":42,"timestamp":"', $m['message']);
    }

    public function test_broadcast_batch_data_aggregates_per_channel_with_correct_negative_minimums(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $batch = [
            ['channel' => 'PLC-1', 'value' => -5.5],
            ['channel' => 'PLC-1', 'value' => -1.25],
            ['channel' => 'PLC-2', 'value' => 10],
            ['value' => 3],
            ['channel' => 'PLC-1', 'value' => -9],
        ];
        $this->assertTrue($this->service()->broadcastBatchData($batch));
        [$m] = $sub->waitFor(1);
        $this->assertSame('laravel_database_scada-batch', $m['channel']);
        $d = json_decode($m['message'], true);
        $this->assertSame('scada.data.received', $d['event']);
        $this->assertSame([
            'PLC-1' => ['count' => 3, 'sum' => -15.75, 'min' => -9, 'max' => -1.25, 'average' => -5.25],
            'PLC-2' => ['count' => 1, 'sum' => 10, 'min' => 10, 'max' => 10, 'average' => 10],
            'unknown' => ['count' => 1, 'sum' => 3, 'min' => 3, 'max' => 3, 'average' => 3],
        ], $d['data']['data']);
        $this->assertSame('scada-batch', $d['data']['channel']);
        $this->assertMatchesRegularExpression(self::ISO, $d['data']['timestamp']);
    }

    public function test_broadcast_is_byte_identical_with_laravels_redis_broadcaster_on_every_channel(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $payload = ['order' => ['id' => 1, 'total' => 99.5, 'items' => ['a/b', 'ü', null, true]], 'empty' => [], 'obj' => ['x' => 1]];
        $this->laravelBroadcaster()->broadcast(['orders', 'private-user.1'], 'App\\Events\\OrderShipped', $payload + ['socket' => '1234.5678']);
        $laravel = $sub->waitFor(2);

        $this->assertTrue($this->service()->broadcast(['orders', 'private-user.1'], 'App\\Events\\OrderShipped', $payload, '1234.5678'));
        $all = $sub->waitFor(4);
        $strip = fn(array $ms) => array_map(fn($m) => [$m['channel'], $m['message']], $ms);
        $this->assertSame($strip($laravel), $strip(array_slice($all, 2, 2)));
        $this->assertSame('laravel_database_private-user.1', $all[3]['channel']);

        // A single channel as a string, no payload, no socket.
        $this->laravelBroadcaster()->broadcast(['news'], 'ping', ['socket' => null]);
        $this->assertTrue($this->service()->broadcast('news', 'ping'));
        $all = $sub->waitFor(6);
        $this->assertSame([$all[4]['channel'], $all[4]['message']], [$all[5]['channel'], $all[5]['message']]);
    }

    public function test_the_prefix_follows_laravels_app_name_default(): void
    {
        $this->startStack(['APP_NAME' => 'Plant SCADA']);
        $sub = $this->subscribe();
        $this->service()->broadcastData(1, 'line-3');
        [$m] = $sub->waitFor(1);
        $this->assertSame('plant_scada_database_line-3', $m['channel']);
    }

    public function test_bad_input_throws_clear_exceptions_and_sends_nothing(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $service = $this->service();
        $cases = [
            [fn() => $service->broadcastData(['v' => NAN]), "\$data['v'] is NAN"],
            [fn() => $service->broadcastData("\xc3\x28"), 'not valid UTF-8'],
            [fn() => $service->broadcastData(['r' => STDERR]), 'is a resource'],
            [fn() => $service->broadcastData(['c' => fn() => 1]), 'is a Closure'],
            [fn() => $service->broadcastData(array_reduce(range(1, 100), fn($c) => ['n' => $c], 0)), 'nested deeper than 64'],
            [fn() => $service->broadcastData(str_repeat('x', 10241)), 'over the 10240 byte limit'],
            [fn() => $service->broadcastData(1, 'no spaces'), 'not a valid channel name'],
            [fn() => $service->broadcastData(1, str_repeat('a', 201)), 'the limit is 200'],
            [fn() => $service->broadcast('c', str_repeat('e', 201)), 'Argument #2 ($event)'],
            [fn() => $service->broadcastBatchData([['channel' => 'a', 'value' => INF]]), 'is INF'],
            // Keys are bytes in PHP: binary keys and NUL bytes get escaped messages, not crashes.
            [fn() => $service->broadcastData(["\xff\x00k" => 1]), 'has a key that is not valid UTF-8'],
            [fn() => $service->broadcastBatchData(["a\x00b" => ['channel' => 'a', 'value' => NAN]]), "\$dataArray['a\\0b']['value'] is NAN"],
            [fn() => $service->broadcastAggregatedData(["t\xff" => 1.5]), "the key is not valid UTF-8"],
            [fn() => $service->broadcast(['ok', "bad\x00name"], 'e'), 'channel 1 is not a valid channel name'],
        ];
        foreach ($cases as [$call, $fragment]) {
            try {
                $call();
                $this->fail("no exception for: $fragment");
            } catch (InvalidBroadcastException $e) {
                $this->assertStringContainsString($fragment, $e->getMessage());
                $this->assertStringContainsString('ScadaBroadcastingService::', $e->getMessage());
            }
        }
        $this->assertTrue($service->flush());
        $this->assertSame([], $sub->all(0.5), 'nothing may be published for refused calls');
        $stats = $service->stats();
        $this->assertSame(count($cases), $stats['invalid']);
        $this->assertSame(0, $stats['accepted']);
    }

    public function test_stats_report_what_the_sidecar_acknowledged(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $service = $this->service();
        for ($i = 0; $i < 1000; $i++) {
            $service->broadcastData(['i' => $i], 'counted');
        }
        $this->assertTrue($service->flush());
        $stats = $service->stats();
        foreach (['accepted', 'sent', 'buffered', 'spooled', 'dropped', 'errors', 'invalid'] as $key) {
            $this->assertArrayHasKey($key, $stats);
        }
        $this->assertSame(1000, $stats['accepted']);
        $this->assertSame(1000, $stats['sent']);
        $this->assertSame(0, $stats['buffered']);
        $this->assertSame(0, $stats['dropped']);
        $this->assertSame(1, $stats['connected']);
        $this->assertCount(1000, $sub->waitFor(1000));
    }

    public function test_events_sent_while_no_sidecar_runs_are_delivered_when_it_starts(): void
    {
        $this->startStack();
        $this->sidecar->stop();
        $sub = $this->subscribe();
        $producer = $this->php(<<<'PHP'
            <?php
            $s = new Scada\Broadcasting\ScadaBroadcastingService();
            for ($i = 0; $i < 2000; $i++) { $s->broadcastData(['i' => $i], 'offline'); }
            $s->flush();
            $st = $s->stats();
            echo json_encode($st), "\n";
            exit($st['spooled'] === 2000 && $st['dropped'] === 0 ? 0 : 1);
            PHP);
        $this->assertSame(0, $producer->wait(30), $producer->output());
        $this->assertSame([], $sub->all(0.3));

        $this->sidecar->start();
        $got = $sub->waitFor(2000, 20);
        $ids = array_map(fn($m) => json_decode($m['message'], true)['data']['data']['i'], $got);
        sort($ids);
        $this->assertSame(range(0, 1999), $ids);
        $this->assertSame([], glob($this->sidecar->spoolDir . '/*.spool'));
    }

    public function test_forked_processes_each_deliver_their_own_events_exactly_once(): void
    {
        $this->startStack();
        $sub = $this->subscribe();
        $producer = $this->php(<<<'PHP'
            <?php
            $s = new Scada\Broadcasting\ScadaBroadcastingService();
            for ($i = 0; $i < 100; $i++) { $s->broadcastData(['who' => 'parent-before', 'i' => $i], 'forked'); }
            $pid = pcntl_fork();
            $who = $pid === 0 ? 'child' : 'parent-after';
            for ($i = 0; $i < 100; $i++) { $s->broadcastData(['who' => $who, 'i' => $i], 'forked'); }
            $ok = $s->flush();
            if ($pid === 0) { exit($ok ? 0 : 3); }
            pcntl_waitpid($pid, $status);
            exit($ok && pcntl_wexitstatus($status) === 0 ? 0 : 1);
            PHP);
        $this->assertSame(0, $producer->wait(30), $producer->output());
        $got = $sub->waitFor(300, 15);
        $this->assertCount(300, $sub->all(0.5), 'no event may arrive twice');
        $counts = array_count_values(array_map(fn($m) => json_decode($m['message'], true)['data']['data']['who'], $got));
        ksort($counts);
        $this->assertSame(['child' => 100, 'parent-after' => 100, 'parent-before' => 100], $counts);
    }
}
