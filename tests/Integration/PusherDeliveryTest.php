<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Sockudo;

/**
 * PHP → extension → sidecar → Sockudo (verifies every signature) → pusher-js
 * over WebSocket: what a browser dashboard sees.
 */
final class PusherDeliveryTest extends IntegrationTestCase
{
    public function test_events_reach_a_pusher_js_client_with_the_exact_name_and_payload(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['scada-realtime', 'orders']);
        $service = $this->service();
        $sample = ['id' => 1, 'channel' => 'PLC-3', 'value' => -12.75, 'unit' => '°C', 'path' => 'a/b', 'ok' => true];
        $this->assertTrue($service->broadcastData($sample, 'scada-realtime'));
        $payload = ['order' => ['id' => 7, 'items' => ['x', 'ü'], 'total' => 99.5], 'empty' => null];
        $this->assertTrue($service->broadcast('orders', 'App\\Events\\OrderShipped', $payload));

        $events = $client->waitFor(2);
        usort($events, fn($a, $b) => strcmp($a['channel'], $b['channel']));
        [$order, $data] = $events;
        $this->assertSame('App\\Events\\OrderShipped', $order['event']);
        $this->assertSame($payload, $order['data']);
        $this->assertSame('scada.data.received', $data['event']);
        $this->assertSame($sample, $data['data']['data']);
        $this->assertSame('scada-realtime', $data['data']['channel']);
        $this->assertMatchesRegularExpression('/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/', $data['data']['timestamp']);
        $this->assertArrayNotHasKey('socket', $data['data'], 'Pusher data carries the payload without socket, as Laravel sends it');
    }

    public function test_every_event_of_a_burst_arrives_once_and_in_order(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['burst']);
        $service = $this->service();
        for ($i = 0; $i < 3000; $i++) {
            $service->broadcast('burst', 'tick', ['n' => $i]);
        }
        $this->assertTrue($service->flush());
        $events = $client->waitFor(3000, 30);
        $this->assertCount(3000, $client->all(1.0), 'no duplicates');
        $this->assertSame(range(0, 2999), array_map(fn($e) => $e['data']['n'], $events));
        $sink = $this->sidecar->sink('pusher');
        $this->assertSame('pusher', $sink['kind']);
        $this->assertSame(3000, $sink['delivered']);
        $this->assertLessThanOrEqual(3000, $sink['requests']);
        $this->assertGreaterThanOrEqual(300, $sink['requests'], 'at most 10 events per batch_events request by default');
        $this->assertSame(0, $sink['permanent_failures']);
    }

    public function test_private_channels_authorize_through_an_endpoint_signed_by_the_extension(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['private-plant.1'], withAuth: true);
        $this->service()->broadcast('private-plant.1', 'alarm', ['level' => 'high']);
        [$e] = $client->waitFor(1);
        $this->assertSame(['channel' => 'private-plant.1', 'event' => 'alarm', 'data' => ['level' => 'high']], array_diff_key($e, ['at_ms' => 1]));

        // The endpoint refuses what the app's rules refuse.
        [$status] = $this->auth->post(['socket_id' => '123.456', 'channel_name' => 'private-denied-x']);
        $this->assertSame(403, $status);
        [$status, $body] = $this->auth->post(['socket_id' => 'garbage', 'channel_name' => 'private-a']);
        $this->assertSame(400, $status);
        $this->assertStringContainsString('socket id must look like', $body);
    }

    public function test_presence_channels_carry_the_members_data(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['presence-control-room'], withAuth: true);
        [$sub] = $client->subscriptions();
        $this->assertSame(1, $sub['members']);
        $this->assertSame('42', (string)$sub['me']['id']);
        $this->assertEquals(['name' => 'Operator Ü/1', 'role' => 'operator'], $sub['me']['info']);
        $this->service()->broadcast('presence-control-room', 'shift.changed', ['shift' => 'B']);
        [$e] = $client->waitFor(1);
        $this->assertSame(['shift' => 'B'], $e['data']);
    }

    public function test_user_authentication_signs_in_a_pusher_js_client(): void
    {
        $this->startPusherStack();
        // pusher.signin() posts to the user endpoint; Sockudo verifies the signature.
        $client = $this->pusherClient(['scada-data'], withUserAuth: true);
        [$status, $body] = $this->auth->post(['socket_id' => '123.456'], '/broadcasting/user-auth');
        $this->assertSame(200, $status);
        $this->assertSame(['id' => '42', 'name' => 'Operator / Shift A'], json_decode(json_decode($body, true)['user_data'], true));
        $this->service()->broadcastData(1);
        $this->assertCount(1, $client->waitFor(1));
    }

    public function test_the_socket_id_is_excluded_like_laravels_to_others(): void
    {
        $this->startPusherStack();
        $me = $this->pusherClient(['chat']);
        $other = $this->pusherClient(['chat']);
        $socketId = $me->socketId();
        $this->assertMatchesRegularExpression('/^\d+\.\d+$/', $socketId);
        $this->service()->broadcast('chat', 'message', ['text' => 'hi'], $socketId);
        $this->service()->broadcast('chat', 'message', ['text' => 'for all']);
        $this->assertCount(2, $other->waitFor(2));
        $mine = $me->all(1.0);
        $this->assertSame([['text' => 'for all']], array_map(fn($e) => $e['data'], $mine));
    }

    public function test_an_event_on_several_channels_reaches_each_of_them(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['line-1', 'line-2', 'line-3']);
        $this->service()->broadcast(['line-1', 'line-2', 'line-3'], 'stop', ['reason' => 'maintenance']);
        $events = $client->waitFor(3);
        $channels = array_map(fn($e) => $e['channel'], $events);
        sort($channels);
        $this->assertSame(['line-1', 'line-2', 'line-3'], $channels);
    }

    public function test_events_over_the_targets_limit_are_refused_counted_and_do_not_block_others(): void
    {
        $this->startPusherStack(configToml: "[[pusher]]\nname = \"pusher\"\nmax_event_bytes = 1000\n");
        $client = $this->pusherClient(['limits']);
        $service = $this->service();
        $service->broadcast('limits', 'big', ['blob' => str_repeat('x', 2000)]);
        $service->broadcast('limits', 'small', ['n' => 1]);
        [$e] = $client->waitFor(1);
        $this->assertSame('small', $e['event']);
        $this->assertCount(1, $client->all(1.0));
        $sink = $this->sidecar->sink('pusher');
        $this->assertSame(1, $sink['permanent_failures']);
        $this->assertSame(1, $sink['delivered']);
        $this->assertStringContainsString('over the target\'s 1000 byte limit', $this->sidecar->log());
    }

    public function test_redis_and_pusher_targets_receive_the_same_events(): void
    {
        $this->startPusherStack(withRedis: true);
        $sub = $this->subscribe();
        $client = $this->pusherClient(['fanout']);
        for ($i = 0; $i < 100; $i++) {
            $this->service()->broadcast('fanout', 'e', ['i' => $i]);
        }
        $this->assertCount(100, $sub->waitFor(100));
        $this->assertSame(range(0, 99), array_map(fn($e) => $e['data']['i'], $client->waitFor(100)));
        $this->assertSame(100, $this->sidecar->sink('redis')['delivered']);
        $this->assertSame(100, $this->sidecar->sink('pusher')['delivered']);
    }

    public function test_a_sockudo_outage_is_retried_and_delivered_in_order(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['outage']);
        $subscriptions = $client->subscriptionCount();
        $this->sockudo->stop();
        $service = $this->service();
        for ($i = 0; $i < 300; $i++) {
            $service->broadcast('outage', 'e', ['i' => $i]);
        }
        $this->assertTrue($service->flush(), 'the sidecar journals (and acknowledges) while the target is down');
        $this->waitForRetries();
        // Freeze the sidecar while the server comes back and the browser reconnects,
        // so the retried events find the client subscribed.
        $this->sidecar->process()->signal(SIGSTOP);
        $this->sockudo = new Sockudo($this->dir, [], $this->sockudo->port);
        \Scada\Broadcasting\Tests\Support\Processes::waitFor(fn() => $client->subscriptionCount() > $subscriptions, 30, 'pusher-js to resubscribe');
        $this->sidecar->process()->signal(SIGCONT);
        $events = $client->waitFor(300, 30);
        $this->assertSame(range(0, 299), array_map(fn($e) => $e['data']['i'], $events));
        $sink = $this->sidecar->sink('pusher');
        $this->assertGreaterThan(0, $sink['retries']);
        $this->assertSame(1, $sink['healthy']);
    }

    private function waitForRetries(): void
    {
        \Scada\Broadcasting\Tests\Support\Processes::waitFor(fn() => $this->sidecar->sink('pusher')['retries'] > 0, 15, 'the sidecar to retry');
    }

    public function test_sockudo_rejects_a_wrong_secret_and_the_sidecar_keeps_the_events(): void
    {
        $this->sockudo = new Sockudo($this->dir);
        $this->sidecar = new \Scada\Broadcasting\Tests\Support\Sidecar($this->dir, $this->sockudo->pusherEnv(['PUSHER_APP_SECRET' => 'wrong-secret-xyz']));
        $this->service()->broadcast('x', 'e', ['a' => 1]);
        $this->waitForRetries();
        $sink = $this->sidecar->sink('pusher');
        $this->assertSame(0, $sink['delivered']);
        $this->assertSame(0, $sink['healthy']);
        $this->assertGreaterThan(0, $sink['lag_bytes'], 'the event stays journaled for when the secret is fixed');
        $this->assertStringNotContainsString('wrong-secret-xyz', $this->sidecar->log());
        $this->assertStringNotContainsString(Sockudo::SECRET, $this->sidecar->log());
    }
}
