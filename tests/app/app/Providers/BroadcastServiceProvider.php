<?php

namespace App\Providers;

use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Support\Facades\Broadcast;
use Illuminate\Support\ServiceProvider;

class BroadcastServiceProvider extends ServiceProvider
{
    public function boot(): void
    {
        // SCADA_APP_BROADCAST_MIDDLEWARE=a,b: Broadcast::routes(['middleware' => [a, b]]), as apps guarding it with auth do.
        // SCADA_APP_BROADCAST_ROUTES=0: no Broadcast::routes() at all (the package's token route falls back to `web`).
        $middleware = getenv('SCADA_APP_BROADCAST_MIDDLEWARE');
        if (getenv('SCADA_APP_BROADCAST_ROUTES') !== '0') {
            Broadcast::routes($middleware ? ['middleware' => explode(',', $middleware)] : null);
        }
        // pusher:signin (Laravel 10+; on Laravel 8 the package registers SCADA_USER_AUTH_ROUTE).
        if (method_exists(BroadcastManager::class, 'userRoutes')) {
            Broadcast::userRoutes();
        }
        require base_path('routes/channels.php');
    }
}
