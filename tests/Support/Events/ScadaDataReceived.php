<?php

namespace Scada\Broadcasting\Tests\Support\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Contracts\Broadcasting\ShouldBroadcast;
use Illuminate\Foundation\Events\Dispatchable;
use Illuminate\Support\Carbon;

/** The user's event, exactly as in the seed document (000, section 2.2). */
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
