<?php

namespace App\Jobs;

use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Scada\Broadcasting\Facades\ScadaBroadcast;

/** A job that broadcasts thousands of samples through the facade (the seed's API). */
class BroadcastSamples implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public function __construct(public int $jobNumber, public int $samples, public string $channel = 'scada-realtime')
    {
    }

    public function handle(): void
    {
        for ($i = 0; $i < $this->samples; $i++) {
            ScadaBroadcast::broadcastData(['job' => $this->jobNumber, 'i' => $i, 'value' => $i / 10, 'unit' => 'bar'], $this->channel);
        }
    }
}
