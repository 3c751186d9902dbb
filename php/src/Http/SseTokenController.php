<?php

namespace Scada\Broadcasting\Http;

use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Broadcast;
use InvalidArgumentException;
use Scada\Broadcasting\ScadaBroadcaster;
use Scada\Broadcasting\ScadaBroadcastingServiceProvider;
use Scada\Broadcasting\Sse\SseTokenIssuer;
use Symfony\Component\HttpKernel\Exception\AccessDeniedHttpException;

/**
 * `POST /broadcasting/sse-token` with `channels[]`: a token for the sidecar's
 * SSE listener covering the request's private and presence channels, each
 * authorized by the app's routes/channels.php callbacks exactly as
 * /broadcasting/auth authorizes it. One refused channel refuses the request.
 */
class SseTokenController
{
    /** At most this many channels per token (one EventSource's query). */
    public const MAX_CHANNELS = 100;

    public function __invoke(Request $request): JsonResponse
    {
        $channels = $request->input('channels');
        if (! is_array($channels) || $channels === [] || ! array_is_list($channels)) {
            return self::error(422, 'channels: a non-empty list of channel names is required (channels[]=...)');
        }
        if (count($channels) > self::MAX_CHANNELS) {
            return self::error(422, sprintf('channels: at most %d channels per token, got %d', self::MAX_CHANNELS, count($channels)));
        }
        try {
            $protected = SseTokenIssuer::protectedChannels($channels);
        } catch (InvalidArgumentException $e) {
            return self::error(422, $e->getMessage());
        }
        if ($protected === []) {
            // Public channels are open without a token.
            return new JsonResponse(['token' => null, 'expires' => null]);
        }

        try {
            $issuer = ScadaBroadcastingServiceProvider::sseTokenIssuer(app('config'));
        } catch (InvalidArgumentException $e) {
            return self::error(500, $e->getMessage()); // says which setting, never the secret
        }
        $broadcaster = Broadcast::connection();
        if (! $broadcaster instanceof ScadaBroadcaster) {
            return self::error(500, 'SSE tokens need the scada broadcasting driver as the default connection (its routes/channels.php callbacks decide)');
        }
        foreach ($protected as $channel) {
            try {
                $broadcaster->authorizeSubscription($request, $channel);
            } catch (AccessDeniedHttpException $e) {
                // Which channel: the Echo connector leaves it out and keeps the others.
                return new JsonResponse(['message' => "not allowed to subscribe to $channel", 'channel' => $channel], 403);
            }
        }

        return new JsonResponse($issuer->issue($protected, time()));
    }

    private static function error(int $status, string $message): JsonResponse
    {
        return new JsonResponse(['message' => $message], $status);
    }
}
