<?php

namespace Scada\Broadcasting\Tests\Integration;

use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Broadcasting\Broadcasters\Broadcaster;
use Illuminate\Broadcasting\Broadcasters\PusherBroadcaster;
use Scada\Broadcasting\ScadaBroadcaster;
use Scada\Broadcasting\ScadaBroadcastingServiceProvider;
use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\LaravelApp;
use Scada\Broadcasting\Tests\Support\RedisServer;
use Scada\Broadcasting\Tests\Support\Subscriber;
use Scada\Broadcasting\Tests\Support\TestApp;

/**
 * Laravel itself is the oracle, on whichever Laravel this stack has (8.83,
 * 10.48, 13.31): the same app sends the same events through Laravel's own
 * RedisBroadcaster and through the scada driver, and answers the same
 * /broadcasting/auth requests through Laravel's own PusherBroadcaster and the
 * scada driver. Every Redis message and every auth response must be
 * byte-identical.
 */
final class LaravelOracleTest extends IntegrationTestCase
{
    public function test_redis_messages_are_byte_identical_with_laravels_own_redis_broadcaster(): void
    {
        $this->startStack(); // the sidecar delivers to its own redis-server...
        $laravelsRedis = new RedisServer($this->dir); // ...Laravel's RedisBroadcaster publishes to this one
        $fromLaravel = new Subscriber($this->dir, $laravelsRedis->port, '*');
        $fromScada = $this->subscribe('*');
        [$server, $base] = $this->laravel(['REDIS_PORT' => (string) $laravelsRedis->port])->serve();

        $socket = ['X-Socket-ID' => '1234.5678'];
        [$status, , $body] = TestApp::request('GET', "$base/test/oracle/redis", [], $socket);
        $this->assertSame(200, $status, $body);
        $expected = json_decode($body, true)['messages'];
        [$status, , $body] = TestApp::request('GET', "$base/test/oracle/scada", [], $socket);
        $this->assertSame(200, $status, $body);
        $this->assertSame($expected, json_decode($body, true)['messages']);

        $laravel = self::byChannel($fromLaravel->waitFor($expected, 20));
        $scada = self::byChannel($fromScada->waitFor($expected, 30));
        $this->assertCount($expected, $fromLaravel->all(0.3), 'Laravel published each message once');
        $this->assertCount($expected, $fromScada->all(0.5), 'the sidecar published each message once');
        $this->assertSame(array_keys($laravel), array_keys($scada), 'the same channels');
        foreach ($laravel as $channel => $messages) {
            $this->assertSame($messages, $scada[$channel], "messages on $channel");
        }
        // The oracle covers what the issue lists, so a regression cannot hide in an empty comparison.
        $public = $laravel['laravel_database_oracle-public'];
        $this->assertStringContainsString('"socket":"1234.5678"', $public[0], 'toOthers() excludes the sender');
        $this->assertStringContainsString('Gr\u00fc\u00dfe\/\u6771\u4eac \ud83d\udeb0', $public[0], 'unicode and slashes escaped as json_encode does');
        $this->assertStringContainsString('"third":0.3333333333333333,"big":1.0e+100,"small":-1.5e-7,"negzero":-0,"whole":100', $public[0]);
        $this->assertStringContainsString('"event":"oracle.named","data":{"level":"high","path":"line\/3","limits":{"min":-0.5,"max":1.0e+21},"tags":{"a":[],"b":{}},"socket":null},"socket":null', $public[1]);
        $this->assertArrayHasKey('laravel_database_private-oracle.1', $laravel);
        $this->assertArrayHasKey('laravel_database_presence-oracle-room', $laravel);
        $this->assertArrayHasKey('laravel_database_oracle-many-130', $laravel, 'more than 100 channels');
        fwrite(STDERR, sprintf("\nORACLE redis: Laravel %s, %d messages on %d channels, byte-identical\n", TestApp::laravelVersion(), $expected, count($laravel)));
        $server->stop();
    }

    public function test_broadcasting_auth_answers_exactly_what_laravels_pusher_driver_answers(): void
    {
        $this->startStack();
        $env = ['PUSHER_APP_ID' => 'oracle-app', 'PUSHER_APP_KEY' => 'oracle-key', 'PUSHER_APP_SECRET' => 'oracle-secret-' . bin2hex(random_bytes(4)), 'APP_DEBUG' => 'false'];
        [$pusherServer, $pusher] = $this->laravel($env + [TestApp::broadcastEnv() => 'pusher'])->serve();
        [$scadaServer, $scada] = $this->laravel($env)->serve();
        // Each side really is the driver it is meant to be (not the scada driver compared with itself).
        $this->assertSame(['class' => PusherBroadcaster::class], json_decode(TestApp::request('GET', "$pusher/test/broadcaster")[2], true), 'the reference answers through Laravel\'s own pusher driver');

        $seven = ['X-User' => '7'];
        $auth = fn (array $form, array $headers = [], string $method = 'POST') => [$method, '/broadcasting/auth', $form, $headers];
        $cases = [
            'private channel allowed' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-secure.1'], $seven), 200],
            'private channel, GET' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-secure.1'], $seven, 'GET'), 200],
            'private channel refused by the callback' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-secure.1'], ['X-User' => '8']), 403],
            'callback returns false' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-vault'], $seven), 403],
            'guarded channel without a user' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-secure.1']), 403],
            'no channel name' => [$auth(['socket_id' => '1234.5678'], $seven), 403],
            'unknown channel' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-nobody-registered'], $seven), 403],
            'presence: member info with unicode, slashes, quotes' => [$auth(['socket_id' => '55.66', 'channel_name' => 'presence-oracle-room'], $seven), 200],
            'presence: integer user identifier' => [$auth(['socket_id' => '55.66', 'channel_name' => 'presence-oracle-room'], ['X-User' => 'int:9']), 200],
            'presence: user identifier 0' => [$auth(['socket_id' => '55.66', 'channel_name' => 'presence-oracle-room'], ['X-User' => 'int:0']), 200],
            'presence: callback returns true' => [$auth(['socket_id' => '55.66', 'channel_name' => 'presence-oracle-flag'], $seven), 200],
            'presence: the app\'s control room' => [$auth(['socket_id' => '55.66', 'channel_name' => 'presence-control-room'], $seven), 200],
            'JSONP callback' => [$auth(['socket_id' => '1234.5678', 'channel_name' => 'private-secure.1', 'callback' => 'cb'], $seven), 200],
            'malformed socket id' => [$auth(['socket_id' => '12.34; DROP', 'channel_name' => 'private-secure.1'], $seven), 500],
        ];
        if (method_exists(Broadcaster::class, 'resolveAuthenticatedUser')) {
            $user = fn (array $form, array $headers = []) => ['POST', '/broadcasting/user-auth', $form, $headers];
            $cases += [
                'pusher:signin user authentication' => [$user(['socket_id' => '1234.5678'], $seven), 200],
                'pusher:signin, nobody logged in' => [$user(['socket_id' => '1234.5678']), 403],
                'pusher:signin, user id 0 (the SDK refuses an empty() id)' => [$user(['socket_id' => '1234.5678'], ['X-User' => 'int:0']), 500],
                'pusher:signin, malformed socket id' => [$user(['socket_id' => 'x'], $seven), 500],
            ];
        } else {
            fwrite(STDERR, "\nORACLE auth: Laravel " . TestApp::laravelVersion() . " has no user authentication (pusher:signin): not compared; LaravelAuthTest covers the package's own route\n");
        }

        // Laravel 11+: the scada driver also behind withBroadcasting(channels, ['middleware' => ['web']]).
        $scadaSides = ['withRouting(channels:)' => $scada];
        if (TestApp::elevenPlus()) {
            [$withBroadcastingServer, $scadaSides['withBroadcasting()']] = $this->laravel($env + ['SCADA_APP_CHANNELS' => 'withBroadcasting'])->serve();
        }
        foreach ($scadaSides as $routing => $base) {
            $this->assertSame(['class' => ScadaBroadcaster::class], json_decode(TestApp::request('GET', "$base/test/broadcaster")[2], true), "the other side ($routing) through the scada driver");
        }
        foreach ($cases as $name => [[$method, $path, $form, $headers], $status]) {
            $fromPusher = TestApp::request($method, $pusher . $path, $form, $headers);
            $this->assertSame($status, $fromPusher[0], "$name: Laravel's pusher driver answered " . $fromPusher[2]);
            foreach ($scadaSides as $routing => $base) {
                $this->assertSame($fromPusher, TestApp::request($method, $base . $path, $form, $headers), "$name ($routing): status, content type and body");
            }
        }
        if (isset($withBroadcastingServer)) {
            $withBroadcastingServer->stop();
        }
        // A presence answer the oracle and the driver agree on is also one pusher-js would accept.
        $body = json_decode(TestApp::request('POST', "$scada/broadcasting/auth", ['socket_id' => '55.66', 'channel_name' => 'presence-oracle-room'], $seven)[2], true);
        $this->assertSame('oracle-key:' . hash_hmac('sha256', "55.66:presence-oracle-room:{$body['channel_data']}", $env['PUSHER_APP_SECRET']), $body['auth']);
        $this->assertStringContainsString('Z\u00fcrich\/Halle 3', $body['channel_data'], 'channel_data is json_encode()d with PHP\'s default flags, as pusher-php-server does');
        fwrite(STDERR, sprintf("\nORACLE auth: Laravel %s, %d requests, identical status, content type and body (scada behind %s)\n", TestApp::laravelVersion(), count($cases), implode(' and ', array_keys($scadaSides))));
        $pusherServer->stop();
        $scadaServer->stop();
    }

    public function test_the_driver_registers_whatever_scope_laravel_binds_the_creator_to(): void
    {
        $this->startStack();
        $app = LaravelApp::make($this->redis->port, [
            'broadcasting' => ['default' => 'scada', 'connections' => ['scada' => ['driver' => 'scada', 'key' => 'k', 'secret' => 's']]],
            'scada-broadcasting' => ['socket' => $this->sidecar->socket, 'spool_dir' => $this->sidecar->spoolDir],
        ]);
        $app->register(ScadaBroadcastingServiceProvider::class);
        $app->boot();
        $manager = $app->make(BroadcastManager::class);
        $creator = (fn () => $this->customCreators['scada'])->call($manager);

        // Laravel 13 binds creators to the manager (static ones to its scope); older versions leave them alone.
        $asLaravel13Binds = (new \ReflectionFunction($creator))->isStatic()
            ? \Closure::bind($creator, null, BroadcastManager::class)
            : \Closure::bind($creator, $manager, BroadcastManager::class);
        $this->assertInstanceOf(ScadaBroadcaster::class, $asLaravel13Binds($app, ['driver' => 'scada', 'key' => 'k', 'secret' => 's']));
        $this->assertInstanceOf(ScadaBroadcaster::class, $manager->connection('scada'), 'through this Laravel\'s own extend()');
        $this->assertTrue($manager->connection('scada')->service()->broadcast('scope-check', 'ping', ['ok' => true]));
    }

    /** @return array<string, list<string>> messages per channel, in arrival order */
    private static function byChannel(array $messages): array
    {
        $by = [];
        foreach ($messages as $m) {
            $by[$m['channel']][] = $m['message'];
        }
        ksort($by);

        return $by;
    }
}
