<?php

namespace Scada\Broadcasting\Tests\Integration;

use PHPUnit\Framework\TestCase;
use Pusher\Pusher;

/**
 * The pusher-php-server stand-in the auth oracle runs Laravel's pusher driver
 * on (tests/fixtures/pusher-php-server, Debian has no package of the SDK)
 * signs like the official SDKs: every private-channel vector, and every
 * presence / user vector whose data JSON.stringify and json_encode write
 * alike (ASCII, no slashes: the Node SDK's vectors escape nothing, the PHP
 * SDK escapes both).
 */
final class PusherSdkStandInTest extends TestCase
{
    public function test_the_stand_in_reproduces_the_official_sdk_signatures(): void
    {
        require_once dirname(__DIR__) . '/fixtures/pusher-php-server/PusherException.php';
        require_once dirname(__DIR__) . '/fixtures/pusher-php-server/Pusher.php';
        $v = json_decode((string) file_get_contents(dirname(__DIR__) . '/fixtures/pusher-vectors.json'), true, 512, JSON_THROW_ON_ERROR);
        $sorted = function (array $a): array {
            ksort($a);

            return $a;
        };
        $portable = fn (array $data) => json_encode($data) === json_encode($data, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);

        $checked = 0;
        foreach ($v['channel_auth'] as $c) {
            $this->assertSame($c['expected'], json_decode((new Pusher($c['key'], $c['secret'], 'app'))->authorizeChannel($c['channel'], $c['socket_id']), true));
            $checked++;
        }
        foreach ($v['presence_auth'] as $c) {
            if (!$portable($c['presence_data'])) {
                continue;
            }
            $sdk = new Pusher($c['key'], $c['secret'], 'app');
            $this->assertSame($sorted($c['expected']), $sorted(json_decode($sdk->authorizePresenceChannel($c['channel'], $c['socket_id'], $c['presence_data']['user_id'], $c['presence_data']['user_info'] ?? null), true)));
            $checked++;
        }
        foreach ($v['user_auth'] as $c) {
            if (!$portable($c['user_data'])) {
                continue;
            }
            $this->assertSame($sorted($c['expected']), $sorted(json_decode((new Pusher($c['key'], $c['secret'], 'app'))->authenticateUser($c['socket_id'], $c['user_data']), true)));
            $checked++;
        }
        $this->assertGreaterThan(8, $checked, 'private vectors and at least one presence or user vector');
        fwrite(STDERR, "\nORACLE pusher-php-server stand-in: $checked official SDK vectors reproduced\n");
    }
}
