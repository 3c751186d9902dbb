<?php

namespace Scada\Broadcasting\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Contracts\Broadcasting\ShouldBroadcast;
use Illuminate\Foundation\Events\Dispatchable;
use Illuminate\Support\Carbon;

/**
 * The seed's event, for apps that prefer events: `scada.data.received` with
 * {data, timestamp (ISO-8601, microseconds), channel}. Through the `scada`
 * driver it costs about the same as ScadaBroadcast::broadcastData(), plus
 * Laravel's event dispatch (or a queued job, as any ShouldBroadcast).
 */
class ScadaDataReceived implements ShouldBroadcast
{
    use Dispatchable, InteractsWithSockets;

    public $scadaData;
    public $timestamp;
    public $channel;

    public function __construct($scadaData, $channel = null)
    {
        $this->scadaData = $scadaData;
        $this->timestamp = Carbon::now();
        $this->channel = $channel ?? 'scada-data';
    }

    public function broadcastOn()
    {
        return new Channel($this->channel);
    }

    public function broadcastAs()
    {
        return 'scada.data.received';
    }

    public function broadcastWith()
    {
        return [
            'data' => $this->scadaData,
            'timestamp' => $this->timestamp->toISOString(),
            'channel' => $this->channel,
        ];
    }
}
