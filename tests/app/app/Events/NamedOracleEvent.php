<?php

namespace App\Events;

use Illuminate\Broadcasting\InteractsWithBroadcasting;
use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;

/** broadcastAs / broadcastWith decide the name and the payload. */
class NamedOracleEvent implements ShouldBroadcastNow
{
    use InteractsWithBroadcasting, InteractsWithSockets;

    /** @param list<\Illuminate\Broadcasting\Channel> $channels */
    public function __construct(public string $hidden, private array $channels)
    {
    }

    public function broadcastOn()
    {
        return $this->channels;
    }

    public function broadcastAs()
    {
        return 'oracle.named';
    }

    public function broadcastWith()
    {
        return ['level' => 'high', 'path' => 'line/3', 'limits' => ['min' => -0.5, 'max' => 1e21], 'tags' => ['a' => [], 'b' => new \stdClass()]];
    }
}
