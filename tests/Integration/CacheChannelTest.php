<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\PusherClient;
use Scada\Broadcasting\Tests\Support\TestApp;

/**
 * `cache-` channels (issue 14, last value on connect): a Pusher-protocol
 * server keeps the last event of a `cache-*` channel and hands it to a client
 * that subscribes later (`pusher:cache_miss` when it has none). Real Sockudo,
 * real pusher-js (and laravel-echo), the extension and the sidecar between.
 */
final class CacheChannelTest extends IntegrationTestCase
{
    /** Waits until the Pusher target delivered $n events (the server has them). */
    private function waitDelivered(int $n): void
    {
        Processes::waitFor(fn() => $this->sidecar->sink('pusher')['delivered'] >= $n, 20, "$n events delivered to Sockudo");
    }

    public function test_a_client_subscribing_after_the_events_gets_the_latest_one_at_once(): void
    {
        $this->startPusherStack();
        $service = $this->service();
        $this->assertTrue($service->broadcast('cache-plant', 'plant.reading', ['value' => 20.0]));
        $this->assertTrue($service->broadcast('cache-plant', 'plant.reading', ['value' => 21.5, 'unit' => '°C']));
        $this->assertTrue($service->broadcast('plain-plant', 'plant.reading', ['value' => 99.0]));
        $this->assertTrue($service->flush());
        $this->waitDelivered(3);

        // Subscribes only now: the cache channel's last event comes with the
        // subscription, an empty cache channel says cache_miss, a plain channel nothing.
        $client = $this->pusherClient(['cache-plant', 'cache-empty', 'plain-plant']);
        [$cached] = $client->waitFor(1);
        $this->assertSame(['channel' => 'cache-plant', 'event' => 'plant.reading', 'data' => ['value' => 21.5, 'unit' => '°C']],
            array_diff_key($cached, ['at_ms' => 1]));
        Processes::waitFor(fn() => $client->cacheMisses() !== [], 10, 'pusher:cache_miss for cache-empty');
        $this->assertSame(['cache-empty'], $client->cacheMisses());
        $this->assertCount(1, $client->all(1.0), 'one cached event, nothing from the plain channel');

        // Live events still flow on the cache channel, and become its cached one.
        $service->broadcast('cache-plant', 'plant.reading', ['value' => 22.5]);
        $events = $client->waitFor(2);
        $this->assertSame(['value' => 22.5], $events[1]['data']);
        $this->waitDelivered(4);
        $late = $this->pusherClient(['cache-plant']);
        [$e] = $late->waitFor(1);
        $this->assertSame(['value' => 22.5], $e['data']);
        $this->assertSame([], $late->cacheMisses());
    }

    public function test_private_cache_channels_are_authorized_and_cached(): void
    {
        $this->startPusherStack();
        $service = $this->service();
        $this->assertTrue($service->broadcast('private-cache-plant.1', 'plant.alarm', ['level' => 'high']));
        $this->assertTrue($service->flush());
        $this->waitDelivered(1);

        $client = $this->pusherClient(['private-cache-plant.1', 'private-cache-plant.2'], withAuth: true);
        [$e] = $client->waitFor(1);
        $this->assertSame(['channel' => 'private-cache-plant.1', 'event' => 'plant.alarm', 'data' => ['level' => 'high']],
            array_diff_key($e, ['at_ms' => 1]));
        Processes::waitFor(fn() => $client->cacheMisses() !== [], 10, 'pusher:cache_miss for private-cache-plant.2');
        $this->assertSame(['private-cache-plant.2'], $client->cacheMisses());
    }

    public function test_the_laravel_driver_broadcasts_to_cache_channels_that_echo_subscribes_to_later(): void
    {
        $this->startPusherStack();
        $app = $this->laravel();
        [$code, $out] = $app->artisan(['test:broadcast', 'reading', '--plant=1', '--value=23.25']);
        $this->assertSame(0, $code, $out);
        $this->waitDelivered(1);

        // Echo.channel('cache-plant') and Echo.private('cache-plant.1'), authorized by the
        // app's routes/channels.php ('cache-plant.{id}') through /broadcasting/auth.
        [$server, $base] = $this->laravel()->serve();
        $client = new PusherClient($this->dir, $this->sockudo->port, ['cache-plant', 'private-cache-plant.1', 'cache-nothing-yet'],
            "$base/broadcasting/auth", null, 'X-User: 8', echoEvent: '.plant.reading');
        $events = $client->waitFor(2);
        $byChannel = array_column($events, 'data', 'channel');
        ksort($byChannel);
        $reading = ['plant' => 1, 'value' => 23.25, 'unit' => '°C'];
        $this->assertSame(['cache-plant' => $reading, 'private-cache-plant.1' => $reading], $byChannel);
        Processes::waitFor(fn() => $client->cacheMisses() !== [], 10, 'pusher:cache_miss for cache-nothing-yet');
        $this->assertSame(['cache-nothing-yet'], $client->cacheMisses());

        // The app's rule still decides: operator 8 may not watch plant 2's cache channel.
        [$status] = TestApp::post("$base/broadcasting/auth", ['socket_id' => '123.456', 'channel_name' => 'private-cache-plant.2'], ['X-User' => '8']);
        $this->assertSame(403, $status);
        [$status] = TestApp::post("$base/broadcasting/auth", ['socket_id' => '123.456', 'channel_name' => 'private-cache-plant.1'], ['X-User' => '8']);
        $this->assertSame(200, $status);
        $server->kill();
    }
}
