<?php

namespace App\Events;

use Illuminate\Broadcasting\InteractsWithBroadcasting;
use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;

/** Public properties are the payload (no broadcastAs / broadcastWith): Laravel's default shape. */
class OracleEvent implements ShouldBroadcastNow
{
    use InteractsWithBroadcasting, InteractsWithSockets;

    /** @param list<\Illuminate\Broadcasting\Channel> $channels */
    public function __construct(public array $readings, public mixed $meta, private array $channels)
    {
    }

    public function broadcastOn()
    {
        return $this->channels;
    }
}
