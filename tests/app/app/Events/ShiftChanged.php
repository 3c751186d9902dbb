<?php

namespace App\Events;

use Illuminate\Broadcasting\PresenceChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;

class ShiftChanged implements ShouldBroadcastNow
{
    public function __construct(public string $shift)
    {
    }

    public function broadcastOn()
    {
        return new PresenceChannel('control-room');
    }
}
