<?php

namespace App\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;
use Illuminate\Foundation\Events\Dispatchable;

/** A reading on cache channels: Pusher-protocol servers keep it for later subscribers. */
class PlantReading implements ShouldBroadcastNow
{
    use Dispatchable;

    public function __construct(public int $plant, public float $value)
    {
    }

    public function broadcastOn()
    {
        return [new Channel('cache-plant'), new PrivateChannel("cache-plant.{$this->plant}")];
    }

    public function broadcastAs()
    {
        return 'plant.reading';
    }

    public function broadcastWith()
    {
        return ['plant' => $this->plant, 'value' => $this->value, 'unit' => '°C'];
    }
}
