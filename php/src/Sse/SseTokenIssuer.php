<?php

namespace Scada\Broadcasting\Sse;

use InvalidArgumentException;

/**
 * Tokens for the sidecar's `GET /sse?channels=...&token=...`:
 * `v1.{expires}.{hex HMAC-SHA256(secret, "scada-sse-v1\n{expires}\n{protected channels}")}`,
 * the protected channels (private-*, presence-*) sorted (strcmp), unique and
 * comma-joined. The sidecar recomputes the HMAC with the same secret, so a
 * token opens exactly the protected channels it was issued for, until it expires.
 * Pure: no clock, no config (the caller passes both).
 */
final class SseTokenIssuer
{
    public const VERSION = 'v1';

    /** Longest channel name Pusher (and the sidecar) accepts. */
    public const MAX_CHANNEL_LEN = 200;

    private const CONTEXT = 'scada-sse-v1';

    /** Pusher's channel characters minus the comma, which separates channels in `?channels=` and in the signed string. */
    private const CHANNEL_PATTERN = '/\A[-a-zA-Z0-9_=@.;]+\z/';

    public function __construct(private string $secret, private int $ttlSeconds = 300)
    {
        if ($secret === '') {
            throw new InvalidArgumentException('scada: SSE tokens need a secret (SCADA_SSE_SECRET, or the connection\'s PUSHER_APP_SECRET)');
        }
        if ($ttlSeconds < 1) {
            throw new InvalidArgumentException(sprintf('scada: the SSE token TTL must be at least 1 second, got %d (scada-broadcasting.sse.token_ttl)', $ttlSeconds));
        }
    }

    /**
     * A token for these channels, valid for the TTL from $now (unix seconds).
     *
     * @param  list<string>  $channels  every channel the client subscribes to; public ones are not signed
     * @return array{token: string, expires: int}
     */
    public function issue(array $channels, int $now): array
    {
        $expires = $now + $this->ttlSeconds;

        return ['token' => $this->token($expires, $channels), 'expires' => $expires];
    }

    /** The token for these channels expiring at $expires (unix seconds). */
    public function token(int $expires, array $channels): string
    {
        return self::VERSION . '.' . $expires . '.' . hash_hmac('sha256', self::signedString($expires, $channels), $this->secret);
    }

    /** What the HMAC covers. */
    public static function signedString(int $expires, array $channels): string
    {
        if ($expires < 0) {
            throw new InvalidArgumentException(sprintf('scada: an SSE token cannot expire before 1970 (%d)', $expires));
        }

        return self::CONTEXT . "\n" . $expires . "\n" . implode(',', self::protectedChannels($channels));
    }

    /**
     * The channels a token must cover: private-* and presence-*, sorted
     * byte-wise (strcmp, as the sidecar sorts), duplicates removed.
     *
     * @return list<string>
     */
    public static function protectedChannels(array $channels): array
    {
        foreach ($channels as $channel) {
            self::assertValidChannel($channel);
        }
        $protected = array_values(array_unique(array_filter($channels, [self::class, 'isProtected'])));
        usort($protected, 'strcmp');

        return $protected;
    }

    /** Channels the SSE listener opens only with a token (Laravel's guarded channels). */
    public static function isProtected(string $channel): bool
    {
        return str_starts_with($channel, 'private-') || str_starts_with($channel, 'presence-');
    }

    /** @param  mixed  $channel */
    public static function assertValidChannel($channel): void
    {
        if (! is_string($channel)) {
            throw new InvalidArgumentException(sprintf('scada: an SSE channel name must be a string, got %s', get_debug_type($channel)));
        }
        if (strlen($channel) > self::MAX_CHANNEL_LEN || ! preg_match(self::CHANNEL_PATTERN, $channel)) {
            throw new InvalidArgumentException(sprintf(
                'scada: invalid SSE channel name %s (1 to %d characters of A-Z a-z 0-9 _ - = @ . ;)',
                json_encode(strlen($channel) > 60 ? substr($channel, 0, 60) . '...' : $channel, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES),
                self::MAX_CHANNEL_LEN
            ));
        }
    }
}
