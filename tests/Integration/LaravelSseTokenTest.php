<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\ServesLaravel;
use Scada\Broadcasting\Tests\Support\SseClient;
use Scada\Broadcasting\Tests\Support\TestApp;

/**
 * The package's POST /broadcasting/sse-token in the real test app, served by
 * `php -S`: each private/presence channel is authorized by the app's
 * routes/channels.php callbacks (tests/app/routes/channels.php) as
 * /broadcasting/auth authorizes it, and the token is recomputed here from
 * the contract (not with the package's issuer).
 */
final class LaravelSseTokenTest extends IntegrationTestCase
{
    private const SECRET = 'sse-secret-for-tests';
    private const PUSHER_SECRET = 'pusher-secret-for-tests';

    use ServesLaravel;

    /** @param array<string, ?string> $env null: not set at all */
    private function serve(array $env = []): string
    {
        return $this->serveApp(array_filter(array_merge([
            'PUSHER_APP_KEY' => 'sse-key',
            'PUSHER_APP_SECRET' => self::PUSHER_SECRET,
            'PUSHER_APP_ID' => '1',
            'SCADA_SSE_SECRET' => self::SECRET,
        ], $env), fn ($v) => $v !== null));
    }

    /** The contract, computed independently of SseTokenIssuer. */
    private static function expectedToken(string $secret, int $expires, string $signedChannels): string
    {
        return "v1.$expires." . hash_hmac('sha256', "scada-sse-v1\n$expires\n$signedChannels", $secret);
    }

    /**
     * @param  list<string>|string  $channels
     * @return array{int, array}
     */
    private static function token(string $base, array|string $channels, ?string $user, array $headers = []): array
    {
        [$status, $body] = TestApp::post("$base/broadcasting/sse-token", ['channels' => $channels], ($user === null ? [] : ['X-User' => $user]) + $headers);

        return [$status, json_decode($body, true) ?? ['raw' => $body]];
    }

    public function test_an_authorized_user_gets_a_token_for_exactly_its_protected_channels(): void
    {
        $base = $this->serve();
        $before = time();
        [$status, $body] = self::token($base, ['private-plant.1', 'scada-realtime', 'presence-control-room', 'private-plant.1'], '8');
        $this->assertSame(200, $status, json_encode($body));
        $this->assertSame(['token', 'expires'], array_keys($body));
        $this->assertIsInt($body['expires']);
        $this->assertGreaterThanOrEqual($before + 300, $body['expires'], 'default TTL 300 s');
        $this->assertLessThanOrEqual(time() + 300, $body['expires']);
        $this->assertSame(self::expectedToken(self::SECRET, $body['expires'], 'presence-control-room,private-plant.1'), $body['token']);

        // Operator 7 may watch every plant; a JSON body works like a form.
        $json = json_encode(['channels' => ['private-plant.9']]);
        $response = file_get_contents("$base/broadcasting/sse-token", false, stream_context_create(['http' => [
            'method' => 'POST', 'ignore_errors' => true, 'content' => $json,
            'header' => "Content-Type: application/json\r\nAccept: application/json\r\nX-User: 7\r\n",
        ]]));
        $this->assertStringContainsString(' 200 ', $http_response_header[0]);
        $body = json_decode($response, true);
        $this->assertSame(self::expectedToken(self::SECRET, $body['expires'], 'private-plant.9'), $body['token']);
    }

    public function test_a_token_from_the_route_opens_its_private_channel_on_the_real_sidecar_and_no_other(): void
    {
        $port = Processes::freePort();
        $this->startStack(['SCADA_SSE_ADDR' => "127.0.0.1:$port", 'SCADA_SSE_SECRET' => self::SECRET]);
        $base = $this->serve();
        [$status, $body] = self::token($base, ['private-plant.1'], '8');
        $this->assertSame(200, $status, json_encode($body));

        $client = new SseClient($this->dir, $this->sidecar->sseUrl('channels=private-plant.1&token=' . urlencode($body['token'])), ['reading']);
        $service = $this->service();
        $this->assertTrue($service->broadcast('private-plant.1', 'reading', ['v' => 1]));
        $this->assertTrue($service->flush());
        $events = $client->waitFor(1);
        $this->assertSame(['reading', '{"v":1}'], [$events[0]['event'], $events[0]['data']]);

        // The same token does not open another private channel, and no token opens none.
        $ctx = stream_context_create(['http' => ['ignore_errors' => true, 'timeout' => 5]]);
        $refused = file_get_contents($this->sidecar->sseUrl('channels=private-plant.2&token=' . urlencode($body['token'])), false, $ctx);
        $this->assertStringContainsString(' 403 ', $http_response_header[0], (string) $refused);
        file_get_contents($this->sidecar->sseUrl('channels=private-plant.1'), false, $ctx);
        $this->assertStringContainsString(' 401 ', $http_response_header[0]);
    }

    public function test_one_refused_channel_refuses_the_token_with_403(): void
    {
        $base = $this->serve();
        // Operator 8 may watch plant 1 only (routes/channels.php).
        [$status, $body] = self::token($base, ['private-plant.1', 'private-plant.2'], '8');
        $this->assertSame(403, $status);
        $this->assertSame(['message' => 'not allowed to subscribe to private-plant.2', 'channel' => 'private-plant.2'], $body);
        // private-vault's callback returns false for everybody; a channel without a callback is refused too.
        $this->assertSame(403, self::token($base, ['private-vault'], '7')[0]);
        $this->assertSame(403, self::token($base, ['private-no-such-rule'], '7')[0]);
        $this->assertSame(403, self::token($base, ['presence-nobody-defined-this'], '7')[0]);
    }

    public function test_guests_get_403_for_protected_channels_and_need_no_token_for_public_ones(): void
    {
        $base = $this->serve();
        [$status, $body] = self::token($base, ['private-plant.1'], null);
        $this->assertSame(403, $status);
        $this->assertSame('not allowed to subscribe to private-plant.1', $body['message']);
        $this->assertSame(403, self::token($base, ['presence-control-room'], null)[0]);

        [$status, $body] = self::token($base, ['scada-realtime', 'plant-status'], null);
        $this->assertSame(200, $status);
        $this->assertSame(['token' => null, 'expires' => null], $body);
    }

    public function test_the_route_has_the_middleware_the_app_gave_broadcasting_auth(): void
    {
        // Broadcast::routes(['middleware' => ['web', Authenticate::class]]) (withBroadcasting() on Laravel 11+).
        $base = $this->serve(['SCADA_APP_BROADCAST_MIDDLEWARE' => 'web,' . \Illuminate\Auth\Middleware\Authenticate::class]
            + (TestApp::elevenPlus() ? ['SCADA_APP_CHANNELS' => 'withBroadcasting'] : []));
        // A guest is stopped by the app's middleware (401) before the package's own check (403), as on /broadcasting/auth.
        [$status, $body] = self::token($base, ['scada-realtime'], null);
        $this->assertSame(401, $status, json_encode($body));
        $this->assertSame('Unauthenticated.', $body['message']);
        $this->assertSame(401, TestApp::post("$base/broadcasting/auth", ['socket_id' => '1.2', 'channel_name' => 'private-plant.1'])[0]);
        [$status, $body] = self::token($base, ['private-plant.1'], '8');
        $this->assertSame(200, $status, json_encode($body));
        $this->assertSame(self::expectedToken(self::SECRET, $body['expires'], 'private-plant.1'), $body['token']);
    }

    public function test_the_configured_ttl_sets_the_expiry_and_later_requests_get_later_tokens(): void
    {
        $base = $this->serve(['SCADA_SSE_TOKEN_TTL' => '2']);
        [$status, $first] = self::token($base, ['private-plant.1'], '8');
        $this->assertSame(200, $status);
        $this->assertLessThanOrEqual(time() + 2, $first['expires']);
        $this->assertGreaterThanOrEqual(time() + 1, $first['expires']);
        while (time() <= $first['expires']) {
            usleep(100_000);
        }
        [, $second] = self::token($base, ['private-plant.1'], '8');
        $this->assertGreaterThan($first['expires'], $second['expires']);
        $this->assertSame(self::expectedToken(self::SECRET, $second['expires'], 'private-plant.1'), $second['token']);
    }

    public function test_without_scada_sse_secret_the_pusher_secret_signs(): void
    {
        $base = $this->serve(['SCADA_SSE_SECRET' => '']);
        [$status, $body] = self::token($base, ['private-plant.1'], '8');
        $this->assertSame(200, $status);
        $this->assertSame(self::expectedToken(self::PUSHER_SECRET, $body['expires'], 'private-plant.1'), $body['token']);
    }

    public function test_bad_requests_and_missing_configuration_get_a_clear_error(): void
    {
        $base = $this->serve();
        foreach ([
            [[], 422, 'channels: a non-empty list of channel names is required'],
            ['private-plant.1', 422, 'channels: a non-empty list of channel names is required (channels[]=...)'],
            [['private-a,private-b'], 422, 'invalid SSE channel name "private-a,private-b"'],
            [['private-plant.1', 'bad channel'], 422, 'invalid SSE channel name "bad channel"'],
            [array_map(fn ($i) => "scada-$i", range(1, 101)), 422, 'at most 100 channels per token, got 101'],
        ] as [$channels, $status, $message]) {
            [$got, $body] = self::token($base, $channels, '7');
            $this->assertSame($status, $got, json_encode($channels));
            $this->assertStringContainsString($message, $body['message'] ?? '');
        }
        // GET is not the token route's method.
        [$status] = TestApp::request('GET', "$base/broadcasting/sse-token", ['channels' => ['private-plant.1']], ['X-User' => '7']);
        $this->assertSame(405, $status);

        // No secret anywhere: 500 naming the setting. Empty, not unset: the
        // containers' own environment has a PUSHER_APP_SECRET the app would inherit.
        $unsigned = $this->serve(['SCADA_SSE_SECRET' => '', 'PUSHER_APP_SECRET' => '']);
        [$status, $body] = self::token($unsigned, ['private-plant.1'], '7');
        $this->assertSame(500, $status);
        $this->assertStringContainsString('SSE tokens need a secret (SCADA_SSE_SECRET', $body['message']);

        // Channel callbacks of another driver are not the scada driver's: 500 saying so.
        $logDriver = $this->serve([TestApp::broadcastEnv() => 'log']);
        [$status, $body] = self::token($logDriver, ['private-plant.1'], '7');
        $this->assertSame(500, $status);
        $this->assertStringContainsString('SSE tokens need the scada broadcasting driver as the default connection', $body['message']);

        // SCADA_SSE_TOKEN_ROUTE=false does not register the route.
        $off = $this->serve(['SCADA_SSE_TOKEN_ROUTE' => 'false']);
        $this->assertSame(404, self::token($off, ['private-plant.1'], '7')[0]);
    }

    public function test_without_broadcast_routes_the_token_route_is_behind_web_with_csrf_verification_on(): void
    {
        if (TestApp::elevenPlus()) {
            $this->markTestSkipped('the 11+ test app always registers its broadcasting routes');
        }
        $base = $this->serve(['SCADA_APP_BROADCAST_ROUTES' => '0', 'SCADA_APP_WEB_SESSION' => '1', 'SCADA_DASHBOARD_ROUTE' => '/scada/dashboard']);
        $this->assertSame(404, TestApp::post("$base/broadcasting/auth", ['socket_id' => '1.2', 'channel_name' => 'private-plant.1'])[0], 'no Broadcast::routes()');
        // Another site's form: no CSRF token, refused before any channel is looked at.
        [$status, $body] = self::token($base, ['private-plant.1'], '8');
        $this->assertSame(419, $status, json_encode($body));
        // The page the session got (the dashboard, with its csrf-token meta): its token and cookie pass.
        [$status, , $html, $headers] = TestApp::requestWithHeaders('GET', "$base/scada/dashboard");
        $this->assertSame(200, $status, $html);
        $this->assertSame(1, preg_match('{<meta name="csrf-token" content="([A-Za-z0-9]{40})">}', $html, $m), $html);
        $cookies = implode('; ', array_map(fn ($c) => explode(';', $c, 2)[0], $headers['set-cookie'] ?? []));
        $this->assertStringContainsString('scada_test_session=', $cookies);
        [$status, $body] = self::token($base, ['private-plant.1'], '8', ['X-CSRF-TOKEN' => $m[1], 'Cookie' => $cookies]);
        $this->assertSame(200, $status, json_encode($body));
        $this->assertSame(self::expectedToken(self::SECRET, $body['expires'], 'private-plant.1'), $body['token']);
        // A wrong token with the right cookie: 419 again.
        $this->assertSame(419, self::token($base, ['private-plant.1'], '8', ['X-CSRF-TOKEN' => str_repeat('x', 40), 'Cookie' => $cookies])[0]);
    }

    public function test_a_multipart_upload_named_channel_name_does_not_stand_in_for_the_channel(): void
    {
        $base = $this->serve();
        $boundary = 'scada' . bin2hex(random_bytes(8));
        $body = "--$boundary\r\nContent-Disposition: form-data; name=\"channels[]\"\r\n\r\nprivate-plant.1\r\n"
            . "--$boundary\r\nContent-Disposition: form-data; name=\"channel_name\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nprivate-plant.2\r\n"
            . "--$boundary--\r\n";
        $response = file_get_contents("$base/broadcasting/sse-token", false, stream_context_create(['http' => [
            'method' => 'POST', 'ignore_errors' => true, 'content' => $body,
            'header' => "Content-Type: multipart/form-data; boundary=$boundary\r\nAccept: application/json\r\nX-User: 8\r\n",
        ]]));
        $this->assertStringContainsString(' 200 ', $http_response_header[0], (string) $response);
        $json = json_decode((string) $response, true);
        $this->assertSame(self::expectedToken(self::SECRET, $json['expires'], 'private-plant.1'), $json['token'], 'plant 1 authorized as plant 1');
    }

    public function test_the_secret_never_appears_in_responses_or_the_server_log(): void
    {
        $base = $this->serve();
        $bodies = '';
        foreach ([[['private-plant.1'], '8'], [['private-plant.2'], '8'], [['bad,name'], '8'], [['private-plant.1'], null]] as [$channels, $user]) {
            $bodies .= json_encode(self::token($base, $channels, $user)[1]);
        }
        $logs = implode("\n", array_map(fn ($f) => (string) file_get_contents($f), array_merge(glob("$this->dir/*.log") ?: [], glob("$this->dir/laravel-storage/logs/*.log") ?: [])));
        $this->assertStringNotContainsString(self::SECRET, $bodies . $logs);
        $this->assertStringNotContainsString(self::PUSHER_SECRET, $bodies . $logs);
    }
}
