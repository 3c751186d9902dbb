<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\SseClient;

/**
 * PHP → extension → the real sidecar process → its SSE listener → an
 * EventSource client (the `eventsource` npm package under node): what a
 * browser sees, across a graceful restart and a kill -9 of the sidecar.
 */
final class SseTest extends IntegrationTestCase
{
    public function test_an_eventsource_client_gets_every_event_and_resumes_after_restarts_and_kill_9(): void
    {
        $port = Processes::freePort();
        $this->startStack(['SCADA_SSE_ADDR' => "127.0.0.1:$port"]);
        $client = new SseClient($this->dir, $this->sidecar->sseUrl('channels=plant-sse,other'), ['tick']);
        $service = $this->service();
        $send = function (int $from, int $to) use ($service) {
            for ($n = $from; $n < $to; $n++) {
                $this->assertTrue($service->broadcast('plant-sse', 'tick', ['n' => $n, 'label' => "é/$n"]));
            }
            $this->assertTrue($service->flush());
        };

        $send(0, 50);
        $events = $client->waitFor(50);
        foreach ($events as $i => $e) {
            $this->assertSame('tick', $e['event']);
            $this->assertSame(json_encode(['n' => $i, 'label' => "é/$i"]), $e['data'], 'the payload as json_encode writes it');
            $this->assertMatchesRegularExpression('/^\d+$/', $e['id']);
        }
        $ids = array_map(fn($e) => (int)$e['id'], $events);
        $sorted = $ids;
        sort($sorted);
        $this->assertSame($sorted, $ids, 'ids grow');

        // SIGTERM: the stream ends; events sent meanwhile wait in PHP's spool.
        $this->assertSame(0, $this->sidecar->stop());
        $send(50, 80);
        $this->sidecar->start();
        $client->waitOpen(2);
        $client->waitFor(80);

        // kill -9: the same, with nothing flushed by the sidecar.
        $this->sidecar->kill();
        $send(80, 110);
        $this->sidecar->start();
        $client->waitOpen(3);
        $events = $client->waitFor(110);
        usleep(300000);
        $events = $client->events();
        $this->assertSame(range(0, 109), array_map(fn($e) => json_decode($e['data'], true)['n'], $events),
            'every event once, in order, across both restarts');
        $this->assertSame([], array_values(array_filter($events, fn($e) => $e['event'] !== 'tick')), 'no gap, no overflow');
        $this->assertSame(1, $this->sidecar->status()['sse']['clients_connected']);
    }

    public function test_a_new_eventsource_client_gets_the_last_values_after_the_sidecar_restarted(): void
    {
        $port = Processes::freePort();
        $this->startStack(['SCADA_SSE_ADDR' => "127.0.0.1:$port", 'SCADA_THROTTLE' => 'live-*=200:latest']);
        $service = $this->service();
        $this->assertTrue($service->broadcast('plant-lv', 'temp', ['v' => 1]));
        $this->assertTrue($service->broadcast('plant-lv', 'temp', ['v' => 2]));
        $this->assertTrue($service->broadcast('plant-lv', 'state', ['on' => true]));
        for ($i = 1; $i <= 100; $i++) {
            $service->broadcast('live-1', 'temp', ['i' => $i]);
        }
        $this->assertTrue($service->flush());
        $before = [];
        Processes::waitFor(function () use (&$before) {
            $c = new SseClient($this->dir, $this->sidecar->sseUrl('channels=plant-lv,live-1'), ['temp', 'state']);
            usleep(500000);
            $before = $c->events();
            return count($before) === 3 && str_contains(end($before)['data'], '"i":100');
        }, 20, 'the last window of live-1 among the last values');

        foreach (['stop', 'kill'] as $how) {
            $how === 'stop' ? $this->assertSame(0, $this->sidecar->stop()) : $this->sidecar->kill();
            $this->sidecar->start();
            // Nothing new was sent: what a new client gets comes from the journal.
            $client = new SseClient($this->dir, $this->sidecar->sseUrl('channels=plant-lv,live-1'), ['temp', 'state']);
            $client->waitFor(3);
            usleep(500000);
            $view = array_map(fn($e) => [$e['id'], $e['event'], $e['data']], $client->events());
            $this->assertSame(array_map(fn($e) => [$e['id'], $e['event'], $e['data']], $before), $view, "the same ids, names and data after $how");
            $this->assertStringContainsString('SSE last values rebuilt from the journal', $this->sidecar->log());
        }
        $this->assertSame(['{"v":2}', '{"on":true}', '{"i":100}'], array_map(fn($e) => $e['data'], $before),
            'the latest per channel and name; the throttled channel\'s last window, not 100 samples');
    }

    public function test_protected_channels_need_a_token_and_bad_requests_get_a_reason(): void
    {
        $port = Processes::freePort();
        $this->startStack(['SCADA_SSE_ADDR' => "127.0.0.1:$port", 'SCADA_SSE_SECRET' => 'sse-secret']);
        $get = function (string $query): array {
            $ctx = stream_context_create(['http' => ['ignore_errors' => true, 'timeout' => 5]]);
            $body = file_get_contents($this->sidecar->sseUrl($query), false, $ctx);
            return [(int)explode(' ', $http_response_header[0])[1], $body];
        };
        $this->assertSame([401, 'a token is required for private- and presence- channels (?token= or Authorization: Bearer)'], $get('channels=private-plant.1'));
        $this->assertSame([403, 'token not valid for these channels'], $get('channels=private-plant.1&token=v1.4102444800.' . str_repeat('0', 64)));
        [$status, $body] = $get('channels=bad%20name');
        $this->assertSame(400, $status);
        $this->assertStringContainsString('channel "bad name"', $body);
    }
}
