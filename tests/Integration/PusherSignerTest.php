<?php

namespace Scada\Broadcasting\Tests\Integration;

use PHPUnit\Framework\TestCase;
use Scada\Broadcasting\InvalidBroadcastException;
use Scada\Broadcasting\PusherSigner;

/**
 * The native signer reproduces every signature the official Pusher SDK
 * produced (tests/fixtures/pusher-vectors.json, Node SDK 5.3.4).
 */
final class PusherSignerTest extends TestCase
{
    private static function vectors(): array
    {
        $file = getenv('PUSHER_VECTORS') ?: dirname(__DIR__) . '/fixtures/pusher-vectors.json';
        if (!is_file($file)) {
            self::fail("signing vectors not found at $file (set PUSHER_VECTORS)");
        }
        return json_decode(file_get_contents($file), true, 512, JSON_THROW_ON_ERROR);
    }

    public function test_http_api_request_signatures_match_the_official_sdk(): void
    {
        $cases = self::vectors()['request_signatures'];
        $this->assertNotEmpty($cases);
        foreach ($cases as $c) {
            $params = (new PusherSigner($c['key'], $c['secret']))->signRequest($c['method'], $c['path'], $c['query_params'], $c['body'], $c['auth_timestamp']);
            $this->assertSame('auth_signature', array_key_last($params));
            $query = implode('&', array_map(fn($k, $v) => "$k=$v", array_keys($params), $params));
            $this->assertSame($c['expected_query'], $query, $c['path']);
            $this->assertSame($c['body'] !== '', isset($params['body_md5']), 'body_md5 only for a non-empty body');
        }
    }

    public function test_private_presence_user_and_encrypted_channel_auth_match_the_official_sdk(): void
    {
        $v = self::vectors();
        foreach ($v['channel_auth'] as $c) {
            $body = (new PusherSigner($c['key'], $c['secret']))->authorizeChannel($c['socket_id'], $c['channel']);
            $this->assertSame($c['expected'], json_decode($body, true));
        }
        foreach ($v['presence_auth'] as $c) {
            $body = json_decode((new PusherSigner($c['key'], $c['secret']))->authorizeChannel($c['socket_id'], $c['channel'], $c['presence_data']), true);
            // The exact string that was signed, unicode and slashes unescaped.
            $this->assertSame($c['expected']['channel_data'], $body['channel_data']);
            $this->assertSame($c['expected']['auth'], $body['auth']);
        }
        foreach ($v['user_auth'] as $c) {
            $body = json_decode((new PusherSigner($c['key'], $c['secret']))->authenticateUser($c['socket_id'], $c['user_data']), true);
            $this->assertSame($c['expected'], $body);
        }
        foreach ($v['encrypted_shared_secret'] as $c) {
            $body = (new PusherSigner($c['key'], $c['secret'], $c['encryption_master_key_base64']))->authorizeChannel($c['socket_id'], $c['channel']);
            $this->assertSame($c['expected'], json_decode($body, true));
        }
    }

    public function test_webhooks_verify_and_tampering_is_detected(): void
    {
        $seenValid = $seenInvalid = 0;
        foreach (self::vectors()['webhooks'] as $c) {
            $ok = (new PusherSigner($c['key'], $c['secret']))->verifyWebhook($c['x_pusher_key'], $c['x_pusher_signature'], $c['body']);
            $this->assertSame($c['valid'], $ok);
            $c['valid'] ? $seenValid++ : $seenInvalid++;
        }
        $this->assertGreaterThan(0, $seenValid);
        $this->assertGreaterThan(0, $seenInvalid);
    }

    public function test_bad_input_gets_clear_errors_that_never_show_the_secret(): void
    {
        $secret = 'super-secret-value';
        $s = new PusherSigner('app-key', $secret);
        $cases = [
            [fn() => $s->authorizeChannel('not-a-socket', 'private-a'), 'Argument #1 ($socketId): socket id must look like'],
            [fn() => $s->authorizeChannel('1.2', 'private bad'), 'Argument #2 ($channel): channel name contains'],
            [fn() => $s->authorizeChannel('1.2', 'presence-room'), 'presence- channels need presence data'],
            [fn() => $s->authorizeChannel('1.2', 'private-room', ['user_id' => 1]), 'presence data is only for presence- channels'],
            [fn() => $s->authorizeChannel('1.2', 'presence-room', ['user_info' => []]), 'must contain a non-empty "user_id"'],
            [fn() => $s->authorizeChannel('1.2', 'private-encrypted-x'), 'need the encryption master key'],
            [fn() => $s->authenticateUser('1.2', ['name' => 'x']), 'must contain a non-empty "id"'],
            [fn() => $s->signRequest('PATCH', '/apps/1/events'), 'method must be GET, POST, PUT or DELETE'],
            [fn() => $s->signRequest('GET', 'apps/1'), 'must start with /'],
            [fn() => new PusherSigner('k', $secret, 'not base64!'), 'must be 32 bytes, base64 encoded'],
            [fn() => new PusherSigner('', $secret), 'Argument #1 ($appKey) must not be empty'],
        ];
        foreach ($cases as [$call, $fragment]) {
            try {
                $call();
                $this->fail("no exception: $fragment");
            } catch (InvalidBroadcastException $e) {
                $this->assertStringContainsString($fragment, $e->getMessage());
                $this->assertStringNotContainsString($secret, $e->getMessage());
            }
        }
        // Signing with a supplied timestamp is deterministic and ordered.
        $a = $s->signRequest('get', '/apps/1/channels', ['info' => 'user_count', 'FILTER_BY_PREFIX' => 'presence-'], '', 1700000000);
        $this->assertSame(['auth_key', 'auth_timestamp', 'auth_version', 'filter_by_prefix', 'info', 'auth_signature'], array_keys($a));
        $this->assertSame($a, $s->signRequest('GET', '/apps/1/channels', ['info' => 'user_count', 'filter_by_prefix' => 'presence-'], '', 1700000000));
    }
}
