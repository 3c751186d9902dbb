<?php

namespace Scada\Broadcasting\Tests\Integration;

use InvalidArgumentException;
use PHPUnit\Framework\TestCase;
use Scada\Broadcasting\Sse\SseTokenIssuer;

/**
 * The SSE token issuer reproduces every vector of the fixed contract
 * (tests/fixtures/sse-token-vectors.json, generated independently with
 * Python's hmac module; the sidecar verifies against the same file).
 */
final class SseTokenIssuerTest extends TestCase
{
    private static function vectors(): array
    {
        $file = dirname(__DIR__) . '/fixtures/sse-token-vectors.json';

        return json_decode(file_get_contents($file), true, 512, JSON_THROW_ON_ERROR)['vectors'];
    }

    public function test_the_sidecar_is_given_the_secret_the_token_route_signs_with_whatever_the_connection_is_named(): void
    {
        // No SCADA_SSE_SECRET; the default connection (not named scada or pusher) signs /broadcasting/auth.
        $config = new \Illuminate\Config\Repository([
            'broadcasting' => ['default' => 'reverb', 'connections' => [
                'reverb' => ['driver' => 'scada', 'key' => 'k', 'secret' => 'reverb-secret', 'app_id' => '1'],
                'pusher' => ['driver' => 'pusher', 'key' => 'k2', 'secret' => 'other-secret', 'app_id' => '2'],
            ]],
            'scada-broadcasting' => ['sse' => ['addr' => '127.0.0.1:8090', 'secret' => null]],
        ]);
        $sidecar = (new \Scada\Broadcasting\Sidecar\SidecarConfig($config, '/tmp/scada-data'))->toArray();
        $this->assertSame('reverb-secret', $sidecar['sse']['secret']);
        $this->assertSame('reverb-secret', \Scada\Broadcasting\ScadaBroadcastingServiceProvider::sseSecret($config));
        $this->assertStringNotContainsString('reverb-secret', (new \Scada\Broadcasting\Sidecar\SidecarConfig($config, '/tmp/scada-data'))->toToml(false));
        // An explicit SSE secret wins, for both.
        $config->set('scada-broadcasting.sse.secret', 'sse-own');
        $this->assertSame('sse-own', (new \Scada\Broadcasting\Sidecar\SidecarConfig($config, '/tmp/scada-data'))->toArray()['sse']['secret']);
    }

    public function test_every_vector_is_reproduced_exactly(): void
    {
        $vectors = self::vectors();
        $this->assertGreaterThanOrEqual(4, count($vectors));
        foreach ($vectors as $v) {
            $label = implode(',', $v['channels']);
            $this->assertSame($v['signed_string'], SseTokenIssuer::signedString($v['expires'], $v['channels']), $label);
            $this->assertSame($v['token'], (new SseTokenIssuer($v['secret']))->token($v['expires'], $v['channels']), $label);
        }
    }

    public function test_issue_expires_after_the_ttl_and_matches_the_vector_for_that_time(): void
    {
        $v = self::vectors()[0];
        $issued = (new SseTokenIssuer($v['secret'], 300))->issue($v['channels'], $v['expires'] - 300);
        $this->assertSame(['token' => $v['token'], 'expires' => $v['expires']], $issued);

        $short = (new SseTokenIssuer($v['secret'], 5))->issue($v['channels'], 1000);
        $this->assertSame(1005, $short['expires']);
        $this->assertStringStartsWith('v1.1005.', $short['token']);
    }

    public function test_order_duplicates_and_public_channels_do_not_change_the_token(): void
    {
        $issuer = new SseTokenIssuer('s3cr3t');
        $a = $issuer->token(2000000000, ['private-a', 'presence-b', 'public']);
        $this->assertSame($a, $issuer->token(2000000000, ['presence-b', 'other-public', 'private-a', 'private-a']));
        $this->assertNotSame($a, $issuer->token(2000000000, ['private-a']), 'a token covers exactly its channels');
        $this->assertNotSame($a, $issuer->token(2000000001, ['private-a', 'presence-b']), 'the expiry is signed');
        $this->assertNotSame($a, (new SseTokenIssuer('other'))->token(2000000000, ['private-a', 'presence-b']), 'the secret is used');
        // strcmp order: uppercase sorts before lowercase, '-' before letters.
        $this->assertSame(['private-B', 'private-a', 'private-a-1', 'private-ab'], SseTokenIssuer::protectedChannels(['private-ab', 'private-a', 'private-a-1', 'private-B']));
    }

    public function test_bad_channel_names_secret_and_ttl_are_refused_with_the_reason(): void
    {
        $cases = [
            [fn () => SseTokenIssuer::protectedChannels(['private-a,private-b']), 'invalid SSE channel name "private-a,private-b"'],
            [fn () => SseTokenIssuer::protectedChannels(['']), 'invalid SSE channel name ""'],
            [fn () => SseTokenIssuer::protectedChannels(['private-' . str_repeat('x', 200)]), '1 to 200 characters'],
            [fn () => SseTokenIssuer::protectedChannels([['private-a']]), 'must be a string, got array'],
            [fn () => SseTokenIssuer::protectedChannels(["private-a\n"]), 'invalid SSE channel name'],
            [fn () => new SseTokenIssuer(''), 'SSE tokens need a secret (SCADA_SSE_SECRET'],
            [fn () => new SseTokenIssuer('s', 0), 'TTL must be at least 1 second, got 0'],
            [fn () => SseTokenIssuer::signedString(-1, []), 'cannot expire before 1970'],
        ];
        foreach ($cases as [$call, $message]) {
            try {
                $call();
                $this->fail("no exception, expected: $message");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString($message, $e->getMessage());
            }
        }
    }
}
