<?php

namespace Scada\Broadcasting;

use Illuminate\Broadcasting\BroadcastException;
use Illuminate\Broadcasting\Broadcasters\Broadcaster;
use Illuminate\Broadcasting\Broadcasters\UsePusherChannelConventions;
use Illuminate\Support\Arr;
use Symfony\Component\HttpKernel\Exception\AccessDeniedHttpException;

/**
 * The `scada` broadcasting driver: events go through the PHP extension to the
 * sidecar (about a microsecond, never waiting on the network), which delivers
 * them to Redis and/or Pusher-protocol servers. Channel authorization follows
 * Laravel's Pusher rules and is signed by the extension's PusherSigner, so
 * Echo / pusher-js clients work unchanged against Pusher, Reverb, Soketi or
 * Sockudo.
 */
class ScadaBroadcaster extends Broadcaster
{
    use UsePusherChannelConventions;

    public function __construct(
        protected ScadaBroadcastingService $service,
        protected ?PusherSigner $signer,
    ) {
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

    /** The signed response for a channel the callback allowed. */
    public function validAuthenticationResponse($request, $result)
    {
        $signer = $this->signer();
        if (str_starts_with($request->channel_name, 'private')) {
            return $this->decode($request, $signer->authorizeChannel($request->socket_id, $request->channel_name));
        }

        $channelName = $this->normalizeChannelName($request->channel_name);
        $user = $this->retrieveUser($request, $channelName);
        $broadcastIdentifier = method_exists($user, 'getAuthIdentifierForBroadcasting')
            ? $user->getAuthIdentifierForBroadcasting()
            : $user->getAuthIdentifier();

        return $this->decode($request, $signer->authorizeChannel(
            $request->socket_id,
            $request->channel_name,
            ['user_id' => $broadcastIdentifier, 'user_info' => $result]
        ));
    }

    /**
     * User authentication for `pusher:signin` (Laravel 10+ calls this from
     * Broadcast::userRoutes(); the package's own route does on older versions).
     *
     * @return array|null null when nobody is logged in
     */
    public function resolveAuthenticatedUser($request)
    {
        if (property_exists($this, 'authenticatedUserCallback') && $this->authenticatedUserCallback) {
            $user = ($this->authenticatedUserCallback)($request);
        } else {
            $authenticated = $request->user();
            $user = $authenticated ? ['id' => (string) $authenticated->getAuthIdentifier()] : null;
        }
        if (! $user) {
            return null;
        }

        return json_decode($this->signer()->authenticateUser($request->socket_id, $user), true);
    }

    /**
     * Hands the event to the sidecar. The payload's `socket` (set by
     * InteractsWithSockets / toOthers) becomes the excluded socket id, as in
     * Laravel's Pusher and Redis drivers.
     */
    public function broadcast(array $channels, $event, array $payload = [])
    {
        if (empty($channels)) {
            return;
        }
        $socket = Arr::pull($payload, 'socket');

        if (! $this->service->broadcast($this->formatChannels($channels), $event, $payload, $socket)) {
            // Only when this process's buffer and spool are full under the
            // 'reject' policy: fail loudly so a queued broadcast is retried.
            throw new BroadcastException(sprintf(
                'scada: event %s refused: this process\'s buffer and spool are full (overflow=reject); see ScadaBroadcastingService::stats()',
                $event
            ));
        }
    }

    public function service(): ScadaBroadcastingService
    {
        return $this->service;
    }

    protected function signer(): PusherSigner
    {
        if ($this->signer === null) {
            throw new BroadcastException('scada: channel authorization needs the app key and secret: set `key` and `secret` on the scada broadcasting connection (PUSHER_APP_KEY, PUSHER_APP_SECRET)');
        }

        return $this->signer;
    }

    /** JSON for the client, or JSONP when the request asks for a callback (as Laravel's Pusher driver does). */
    protected function decode($request, string $json)
    {
        if (! $request->input('callback', false)) {
            return json_decode($json, true);
        }

        return response()->json(json_decode($json, true))->withCallback($request->callback);
    }
}
