<?php

namespace Scada\Broadcasting;

use Illuminate\Broadcasting\BroadcastException;
use Illuminate\Broadcasting\Broadcasters\Broadcaster;
use Illuminate\Broadcasting\Broadcasters\PusherBroadcaster;
use Illuminate\Broadcasting\Broadcasters\UsePusherChannelConventions;
use Illuminate\Contracts\Container\Container;
use Illuminate\Http\Request;
use Illuminate\Support\Arr;
use Symfony\Component\HttpFoundation\FileBag;
use Symfony\Component\HttpFoundation\InputBag;
use Symfony\Component\HttpKernel\Exception\AccessDeniedHttpException;

/**
 * The `scada` broadcasting driver: events go through the PHP extension to the
 * sidecar (about a microsecond, never waiting on the network), which delivers
 * them to Redis and/or Pusher-protocol servers. `/broadcasting/auth` and
 * `/broadcasting/user-auth` answer exactly what this Laravel version's
 * `pusher` driver answers (with pusher-php-server 7.2), byte for byte, so
 * Echo / pusher-js clients work unchanged against Pusher, Reverb, Soketi or
 * Sockudo.
 */
class ScadaBroadcaster extends Broadcaster
{
    use UsePusherChannelConventions;

    /** Pusher's limit per trigger; Laravel's pusher driver sends larger sets in chunks too. */
    public const MAX_CHANNELS_PER_EVENT = 100;

    /** Set while authorizeSubscription() runs: allowed means nothing to sign. */
    private bool $checkingOnly = false;

    /**
     * @param  array{key?: ?string, secret?: ?string, jsonp?: bool}  $credentials  the connection's app key and secret
     */
    public function __construct(
        protected ScadaBroadcastingService $service,
        protected ?PusherSigner $signer,
        protected array $credentials = [],
    ) {
    }

    /**
     * The driver for a `scada` broadcasting connection. A named static method,
     * so registering it does not depend on the scope Laravel gives the creator
     * closure (Laravel 13 binds it to the BroadcastManager).
     */
    public static function fromConfig(Container $app, array $config): self
    {
        ScadaBroadcastingServiceProvider::requireExtension();

        return new self(
            $app->make(ScadaBroadcastingService::class),
            ScadaBroadcastingServiceProvider::signer($config),
            ['key' => $config['key'] ?? null, 'secret' => $config['secret'] ?? null, 'jsonp' => (bool) ($config['jsonp'] ?? false)],
        );
    }

    /** Authenticates the request for a channel: Laravel's private/presence rules. */
    public function auth($request)
    {
        $channelName = $this->normalizeChannelName($request->channel_name);

        if (empty($request->channel_name) ||
            ($this->isGuardedChannel($request->channel_name) &&
            ! $this->retrieveUser($request, $channelName))) {
            throw new AccessDeniedHttpException;
        }

        return parent::verifyUserCanAccessChannel($request, $channelName);
    }

    /**
     * Whether the request's user may subscribe to $channel, decided exactly as
     * /broadcasting/auth decides (guarded channels need a user, then the app's
     * routes/channels.php callbacks through Laravel's own matching), without
     * signing anything: the SSE token route asks this for each channel.
     *
     * @throws AccessDeniedHttpException when refused
     */
    public function authorizeSubscription(Request $request, string $channel): void
    {
        // The same request (user resolver, guards) with only channel_name in
        // its input, whatever the body's format was; no uploaded files (a
        // multipart field named channel_name must not stand in for the name).
        $input = ['channel_name' => $channel];
        $check = $request->duplicate($input, $input);
        // Not through duplicate()'s $files: Laravel 8's filterFiles([]) turns [] into null ("keep them").
        $check->files = new FileBag();
        // The clone also keeps the files the original already converted (allFiles()'s cache).
        (function (): void {
            $this->convertedFiles = null;
        })->call($check);
        $check->setJson(new InputBag($input));

        $this->checkingOnly = true;
        try {
            $this->auth($check);
        } finally {
            $this->checkingOnly = false;
        }
    }

    /** The signed response for a channel the callback allowed (PusherBroadcaster's). */
    public function validAuthenticationResponse($request, $result)
    {
        if ($this->checkingOnly) {
            return true;
        }
        if (str_starts_with($request->channel_name, 'private')) {
            return $this->decode($request, $this->signer()->authorizeChannel($request->socket_id, $request->channel_name));
        }

        $channelName = $this->normalizeChannelName($request->channel_name);
        $user = $this->retrieveUser($request, $channelName);
        $broadcastIdentifier = method_exists($user, 'getAuthIdentifierForBroadcasting')
            ? $user->getAuthIdentifierForBroadcasting()
            : $user->getAuthIdentifier();

        return $this->decode($request, $this->presenceAuthorization($request->channel_name, (string) $request->socket_id, $broadcastIdentifier, $result));
    }

    /**
     * User authentication for `pusher:signin`: Laravel 10+ calls this from
     * Broadcast::userRoutes() (users come from Broadcast::resolveAuthenticatedUserUsing(),
     * as for the pusher driver); on Laravel 8/9 the package's own route does,
     * and the logged-in user's id is used when no callback is registered.
     *
     * @return string|null the JSON body pusher-php-server's authenticateUser() returns; null when nobody is logged in
     */
    public function resolveAuthenticatedUser($request)
    {
        if (method_exists(Broadcaster::class, 'resolveAuthenticatedUser')) {
            $user = parent::resolveAuthenticatedUser($request);
        } else {
            $authenticated = $request->user();
            $user = $authenticated ? ['id' => (string) $authenticated->getAuthIdentifier()] : null;
        }
        if (! $user) {
            return null;
        }
        $socketId = $this->validSocketId((string) $request->socket_id);
        // empty(), as pusher-php-server's authenticateUser(): an id of 0 or "0" is refused too.
        if (! is_array($user) || empty($user['id']) || ! (is_string($user['id']) || is_int($user['id']))) {
            throw new BroadcastException('scada: the authenticated user must be an array with a non-empty "id" (Broadcast::resolveAuthenticatedUserUsing)');
        }
        $userData = json_encode($user, JSON_THROW_ON_ERROR);

        return json_encode(['auth' => $this->key() . ':' . $this->hmac("$socketId::user::$userData"), 'user_data' => $userData], JSON_THROW_ON_ERROR);
    }

    /**
     * Hands the event to the sidecar. The payload's `socket` (set by
     * InteractsWithSockets / toOthers) becomes the excluded socket id, as in
     * Laravel's Pusher and Redis drivers. More than 100 channels go out as
     * several events of at most 100 (Pusher's limit), as the pusher driver does.
     */
    public function broadcast(array $channels, $event, array $payload = [])
    {
        if (empty($channels)) {
            return;
        }
        $socket = Arr::pull($payload, 'socket');

        foreach (array_chunk($this->formatChannels($channels), self::MAX_CHANNELS_PER_EVENT) as $chunk) {
            if (! $this->service->broadcast($chunk, $event, $payload, $socket)) {
                // Only when this process's buffer and spool are full under the
                // 'reject' policy: fail loudly so a queued broadcast is retried.
                throw new BroadcastException(sprintf(
                    'scada: event %s refused: this process\'s buffer and spool are full (overflow=reject); see ScadaBroadcastingService::stats()',
                    $event
                ));
            }
        }
    }

    public function service(): ScadaBroadcastingService
    {
        return $this->service;
    }

    protected function signer(): PusherSigner
    {
        if ($this->signer === null) {
            throw self::missingCredentials();
        }

        return $this->signer;
    }

    /**
     * pusher-php-server's authorizePresenceChannel(): `channel_data` is
     * json_encode(['user_id' => (string) id, 'user_info' => result]) with PHP's
     * default flags, and that exact string is signed.
     */
    protected function presenceAuthorization(string $channel, string $socketId, mixed $userId, mixed $userInfo): string
    {
        $this->signer(); // the same clear error as for private channels when key/secret are missing
        $socketId = $this->validSocketId($socketId);
        if (! preg_match('/\A[-a-zA-Z0-9_=@,.;]+\z/', $channel)) {
            throw new BroadcastException(sprintf('scada: invalid channel name %s', json_encode($channel)));
        }
        if ($userId === null || $userId === '' || ! is_scalar($userId)) {
            throw new BroadcastException('scada: presence channels need a user identifier (getAuthIdentifierForBroadcasting / getAuthIdentifier)');
        }
        $userData = ['user_id' => (string) $userId];
        if ($userInfo) {
            $userData['user_info'] = $userInfo;
        }
        $channelData = json_encode($userData, JSON_THROW_ON_ERROR);

        return json_encode(['auth' => $this->key() . ':' . $this->hmac("$socketId:$channel:$channelData"), 'channel_data' => $channelData], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    }

    private function validSocketId(string $socketId): string
    {
        if (! preg_match('/\A\d+\.\d+\z/', $socketId)) {
            throw new BroadcastException(sprintf('scada: invalid socket id %s (expected digits.digits)', json_encode($socketId)));
        }

        return $socketId;
    }

    private function key(): string
    {
        return (string) $this->credentials['key'];
    }

    /** HMAC-SHA256 with the app secret, as every Pusher SDK signs. */
    private function hmac(string $stringToSign): string
    {
        if (empty($this->credentials['key']) || empty($this->credentials['secret'])) {
            throw self::missingCredentials();
        }

        return hash_hmac('sha256', $stringToSign, (string) $this->credentials['secret']);
    }

    private static function missingCredentials(): BroadcastException
    {
        return new BroadcastException('scada: channel authorization needs the app key and secret: set `key` and `secret` on the scada broadcasting connection (PUSHER_APP_KEY, PUSHER_APP_SECRET)');
    }

    /**
     * JSON for the client, or JSONP when the request asks for a callback and
     * this Laravel version's pusher driver would answer JSONP (Laravel 12+
     * only with `'jsonp' => true` on the connection).
     */
    protected function decode($request, string $json)
    {
        if (! $request->input('callback', false) || ! $this->allowsJsonp()) {
            return json_decode($json, true);
        }

        return response()->json(json_decode($json, true))->withCallback($request->callback);
    }

    private function allowsJsonp(): bool
    {
        return property_exists(PusherBroadcaster::class, 'allowJsonp') ? ($this->credentials['jsonp'] ?? false) : true;
    }
}
