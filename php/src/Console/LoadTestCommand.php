<?php

namespace Scada\Broadcasting\Console;

use Illuminate\Console\Command;
use Scada\Broadcasting\Events\ScadaDataReceived;
use Scada\Broadcasting\ScadaBroadcastingService;
use Throwable;

/**
 * The seed's WebSocket load test (section 8.2), measuring the new path: how
 * many messages, how many succeeded, how long, how fast; then how many the
 * sidecar acknowledged.
 */
class LoadTestCommand extends Command
{
    protected $signature = 'scada:load-test
        {--messages=1000 : How many messages to send}
        {--channel=load-test : Channel to broadcast on}
        {--delay-us=0 : Pause between messages in microseconds (the seed used 1000)}
        {--via=service : "service" (ScadaBroadcast::broadcastData) or "event" (ScadaDataReceived through the broadcasting driver)}';

    protected $description = 'Send test SCADA samples through scada-broadcast and report the rate';

    public function handle(ScadaBroadcastingService $service): int
    {
        $count = max(0, (int) $this->option('messages'));
        $channel = (string) $this->option('channel');
        $delay = max(0, (int) $this->option('delay-us'));
        $via = (string) $this->option('via');
        if (! in_array($via, ['service', 'event'], true)) {
            $this->error('--via must be "service" or "event"');

            return self::INVALID;
        }

        $this->info("Starting load test: $count messages on '$channel' via $via...");
        $success = 0;
        $errors = 0;
        $bar = $this->output->createProgressBar($count);
        $bar->setRedrawFrequency(max(1, intdiv($count, 100)));
        $start = microtime(true);
        for ($i = 0; $i < $count; $i++) {
            $sample = ['id' => $i, 'channel' => 'test-channel', 'value' => mt_rand(0, 100), 'timestamp' => now()->toISOString()];
            try {
                $ok = $via === 'service'
                    ? $service->broadcastData($sample, $channel)
                    : (event(new ScadaDataReceived($sample, $channel)) !== false);
                $ok ? $success++ : $errors++;
            } catch (Throwable $e) {
                $errors++;
                if ($errors <= 5) {
                    $this->newLine();
                    $this->error("Error sending message $i: " . $e->getMessage());
                }
            }
            $bar->advance();
            if ($delay > 0) {
                usleep($delay);
            }
        }
        $sendTime = microtime(true) - $start;
        $bar->finish();
        $this->newLine();
        $flushed = $service->flush();
        $duration = microtime(true) - $start;
        $stats = $service->stats();

        $this->line('');
        $this->line('=== Load Test Results ===');
        $this->line("Total messages: $count");
        $this->line("Successful: $success");
        $this->line("Errors: $errors");
        $this->line('Duration: ' . number_format($duration, 2) . ' seconds');
        $this->line('Rate: ' . number_format($count / max($duration, 1e-9), 2) . ' messages/second');
        $this->line('Time in broadcast calls: ' . number_format($sendTime, 3) . ' seconds (' . number_format($count ? $sendTime / $count * 1e6 : 0, 2) . ' µs per message)');
        $this->line(sprintf('Handed to the sidecar: %s (acknowledged %d, spooled %d, dropped %d)',
            $flushed ? 'yes' : 'not within the flush timeout', $stats['sent'], $stats['spooled'], $stats['dropped']));

        return $errors === 0 ? self::SUCCESS : self::FAILURE;
    }
}
