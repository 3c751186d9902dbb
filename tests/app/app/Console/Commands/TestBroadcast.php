<?php

namespace App\Console\Commands;

use App\Events\OrderShipped;
use App\Events\PlantReading;
use App\Events\SensorAlarm;
use App\Events\ShiftChanged;
use App\Jobs\BroadcastSamples;
use Illuminate\Console\Command;
use Scada\Broadcasting\Events\ScadaDataReceived;

/** Drives the test scenarios from a real process. */
class TestBroadcast extends Command
{
    protected $signature = 'test:broadcast {what : alarm|shift|orders|sample-jobs|seed-event|reading}
        {--value=21.5}
        {--count=1} {--samples=100} {--socket=} {--plant=1} {--channel=scada-realtime}';

    protected $description = 'Broadcast test events through the configured driver';

    public function handle(): int
    {
        $count = (int) $this->option('count');
        switch ($this->argument('what')) {
            case 'alarm':
                $event = new SensorAlarm((int) $this->option('plant'), 'high');
                $event->socket = $this->option('socket') ?: null;
                broadcast($event);
                break;
            case 'shift':
                broadcast(new ShiftChanged('B'));
                break;
            case 'orders':
                for ($i = 0; $i < $count; $i++) {
                    OrderShipped::dispatch(['id' => $i, 'total' => 10.5 * $i, 'note' => 'ü/ß']);
                }
                break;
            case 'sample-jobs':
                for ($i = 0; $i < $count; $i++) {
                    BroadcastSamples::dispatch($i, (int) $this->option('samples'), (string) $this->option('channel'));
                }
                break;
            case 'reading':
                broadcast(new PlantReading((int) $this->option('plant'), (float) $this->option('value')));
                break;
            case 'seed-event':
                broadcast(new ScadaDataReceived(['channel' => 'PLC-1', 'value' => 42.5], (string) $this->option('channel')));
                break;
            default:
                $this->error('unknown scenario');

                return 2;
        }
        $this->info('ok');

        return 0;
    }
}
