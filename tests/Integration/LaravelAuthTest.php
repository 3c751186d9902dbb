<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\PusherSigner;
use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\PusherClient;
use Scada\Broadcasting\Tests\Support\Sockudo;
use Scada\Broadcasting\Tests\Support\TestApp;

/**
 * Laravel's /broadcasting/auth with the scada driver, served by `php -S`:
 * Laravel's private/presence rules (routes/channels.php), signed by the
 * extension; then pusher-js subscribes through it against Sockudo.
 */
final class LaravelAuthTest extends IntegrationTestCase
{
    private function serve(array $env = []): string
    {
        [$server, $url] = $this->laravel($env)->serve();
        $this->server = $server;

        return $url;
    }

    private $server;

    public function test_private_channels_follow_the_apps_rules_and_are_signed_like_pusher(): void
    {
        $this->startPusherStack();
        $url = $this->serve() . '/broadcasting/auth';
        $signer = new PusherSigner(Sockudo::KEY, Sockudo::SECRET);

        [$status, $body] = TestApp::post($url, ['socket_id' => '123.456', 'channel_name' => 'private-plant.1'], ['X-User' => '8']);
        $this->assertSame(200, $status, $body);
        $this->assertSame(json_decode($signer->authorizeChannel('123.456', 'private-plant.1'), true), json_decode($body, true));

        // The callback refuses: 403, as Laravel's drivers answer.
        [$status] = TestApp::post($url, ['socket_id' => '123.456', 'channel_name' => 'private-plant.2'], ['X-User' => '8']);
        $this->assertSame(403, $status);
        [$status] = TestApp::post($url, ['socket_id' => '123.456', 'channel_name' => 'private-vault'], ['X-User' => '7']);
        $this->assertSame(403, $status);
        // Guarded channels need a logged-in user.
        [$status] = TestApp::post($url, ['socket_id' => '123.456', 'channel_name' => 'private-plant.1']);
        $this->assertSame(403, $status);
    }

    public function test_presence_channels_return_the_members_data_as_signed(): void
    {
        $this->startPusherStack();
        $url = $this->serve() . '/broadcasting/auth';
        [$status, $body] = TestApp::post($url, ['socket_id' => '55.66', 'channel_name' => 'presence-control-room'], ['X-User' => '7']);
        $this->assertSame(200, $status, $body);
        $response = json_decode($body, true);
        $data = json_decode($response['channel_data'], true);
        $this->assertSame(['user_id' => '7', 'user_info' => ['id' => '7', 'name' => 'Operator 7', 'shift' => 'A/B']], $data);
        // json_encode()d and signed as pusher-php-server does for Laravel's pusher driver (LaravelOracleTest compares them).
        $this->assertStringContainsString('"shift":"A\\/B"', $response['channel_data']);
        $this->assertSame(Sockudo::KEY . ':' . hash_hmac('sha256', "55.66:presence-control-room:{$response['channel_data']}", Sockudo::SECRET), $response['auth']);
    }

    public function test_pusher_js_subscribes_to_private_and_presence_channels_through_the_laravel_endpoint(): void
    {
        $this->startPusherStack();
        $base = $this->serve();
        $client = new PusherClient($this->dir, $this->sockudo->port, ['private-plant.1', 'presence-control-room'], "$base/broadcasting/auth", null, 'X-User: 7');
        $presence = array_values(array_filter($client->subscriptions(), fn ($s) => $s['subscribed'] === 'presence-control-room'))[0];
        $this->assertSame(1, $presence['members']);
        $this->assertSame('7', (string) $presence['me']['id']);

        $app = $this->laravel();
        $this->assertSame(0, $app->artisan(['test:broadcast', 'alarm', '--plant=1'])[0]);
        $this->assertSame(0, $app->artisan(['test:broadcast', 'shift'])[0]);
        $events = $client->waitFor(2);
        $byChannel = array_column($events, 'event', 'channel');
        ksort($byChannel);
        $this->assertSame(['presence-control-room' => 'App\\Events\\ShiftChanged', 'private-plant.1' => 'sensor.alarm'], $byChannel);
    }

    public function test_user_authentication_for_pusher_signin_on_laravel_8(): void
    {
        $this->startPusherStack();
        $base = $this->serve(['SCADA_USER_AUTH_ROUTE' => '/broadcasting/user-auth']);
        [$status] = TestApp::post("$base/broadcasting/user-auth", ['socket_id' => '1.2']);
        $this->assertSame(403, $status, 'nobody logged in');
        [$status, $body] = TestApp::post("$base/broadcasting/user-auth", ['socket_id' => '1.2'], ['X-User' => '7']);
        $this->assertSame(200, $status, $body);
        $this->assertSame('7', json_decode(json_decode($body, true)['user_data'], true)['id']);
        // A real pusher-js signs in through it; Sockudo verifies the signature.
        $client = new PusherClient($this->dir, $this->sockudo->port, ['scada-data'], null, "$base/broadcasting/user-auth", 'X-User: 7');
        $this->service()->broadcastData(1);
        $this->assertCount(1, $client->waitFor(1));
    }
}
