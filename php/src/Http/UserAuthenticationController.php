<?php

namespace Scada\Broadcasting\Http;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Broadcast;
use Scada\Broadcasting\ScadaBroadcaster;
use Symfony\Component\HttpKernel\Exception\AccessDeniedHttpException;

/** `pusher:signin` for Laravel versions without Broadcast::userRoutes(). */
class UserAuthenticationController
{
    public function __invoke(Request $request)
    {
        $broadcaster = Broadcast::connection();
        if (! $broadcaster instanceof ScadaBroadcaster) {
            abort(500, 'user authentication needs the scada broadcasting driver as the default connection');
        }
        $response = $broadcaster->resolveAuthenticatedUser($request);
        if ($response === null) {
            throw new AccessDeniedHttpException;
        }

        return $response;
    }
}
