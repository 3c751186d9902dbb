<?php

namespace App\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;
use Illuminate\Foundation\Events\Dispatchable;

class SensorAlarm implements ShouldBroadcastNow
{
    use Dispatchable, InteractsWithSockets;

    public function __construct(public int $plant, public string $level)
    {
    }

    public function broadcastOn()
    {
        return [new PrivateChannel("plant.{$this->plant}"), new Channel('alarms')];
    }

    public function broadcastAs()
    {
        return 'sensor.alarm';
    }

    public function broadcastWith()
    {
        return ['plant' => $this->plant, 'level' => $this->level, 'path' => 'line/3'];
    }
}
