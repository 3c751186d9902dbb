<?php

namespace Scada\Broadcasting\Facades;

use Illuminate\Support\Facades\Facade;
use Scada\Broadcasting\ScadaBroadcastingService;

/**
 * The seed's ScadaBroadcastingService API, backed by the extension.
 *
 * @method static bool broadcastData(mixed $data, string $channel = 'scada-data')
 * @method static bool broadcastBatchData(array $dataArray, string $channel = 'scada-batch')
 * @method static bool broadcastAggregatedData(mixed $data, string $channel = 'scada-aggregated', int $throttleMs = 100)
 * @method static bool broadcast(array|string $channels, string $event, array $payload = [], ?string $socketId = null)
 * @method static bool flush(?int $timeoutMs = null)
 * @method static array stats()
 *
 * @see \Scada\Broadcasting\ScadaBroadcastingService
 */
class ScadaBroadcast extends Facade
{
    protected static function getFacadeAccessor()
    {
        return ScadaBroadcastingService::class;
    }
}
