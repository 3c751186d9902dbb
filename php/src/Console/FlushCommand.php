<?php

namespace Scada\Broadcasting\Console;

use Illuminate\Console\Command;
use Scada\Broadcasting\Exceptions\SidecarUnavailable;
use Scada\Broadcasting\ScadaBroadcastingService;
use Scada\Broadcasting\Sidecar\StatusClient;

/**
 * Hands everything pending to the sidecar and waits until it has delivered
 * its backlog: this process's buffer, orphaned spool files (collected now),
 * and every target's journal backlog. For deployments and maintenance.
 */
class FlushCommand extends Command
{
    protected $signature = 'scada:flush {--timeout=30 : Seconds to wait for the sidecar\'s backlog to be delivered}';

    protected $description = 'Flush pending events and wait until the sidecar has delivered its backlog';

    public function handle(ScadaBroadcastingService $service): int
    {
        $service->flush();
        $config = $this->laravel['config'];
        $client = StatusClient::forSocket((string) $config->get('scada-broadcasting.socket'), $config->get('scada-broadcasting.sidecar.status_addr'));
        try {
            $client->flush();
            $deadline = microtime(true) + (float) $this->option('timeout');
            do {
                $status = $client->status();
                $backlog = array_sum(array_column($status['sinks'], 'lag_bytes'));
                $spool = count(glob(rtrim($status['spool_dir'], '/') . '/*.spool') ?: []);
                if ($backlog === 0 && $spool === 0) {
                    $this->info(sprintf('Everything is delivered: %d events journaled, %s.', $status['ingest']['events'],
                        implode(', ', array_map(fn ($s) => "{$s['name']} {$s['delivered']} delivered", $status['sinks']))));

                    return self::SUCCESS;
                }
                usleep(200_000);
            } while (microtime(true) < $deadline);
        } catch (SidecarUnavailable $e) {
            $this->error($e->getMessage());

            return self::FAILURE;
        }
        $this->error(sprintf('Not delivered within %ds: %d journal bytes and %d spool files remain (see php artisan scada:status).', (int) $this->option('timeout'), $backlog, $spool));

        return self::FAILURE;
    }
}
