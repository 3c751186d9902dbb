<?php

namespace Scada\Broadcasting\Console;

use Illuminate\Console\Command;
use Scada\Broadcasting\Exceptions\SidecarUnavailable;
use Scada\Broadcasting\ScadaBroadcastingService;
use Scada\Broadcasting\Sidecar\StatusClient;

/** Is the sidecar up, what has it done, where does it deliver; and this process's counters. */
class StatusCommand extends Command
{
    protected $signature = 'scada:status {--json : Print the sidecar status and this process\'s stats as JSON}';

    protected $description = 'Show the scada-broadcast sidecar\'s state, counters and targets';

    public function handle(ScadaBroadcastingService $service): int
    {
        $config = $this->laravel['config'];
        $client = StatusClient::forSocket((string) $config->get('scada-broadcasting.socket'), $config->get('scada-broadcasting.sidecar.status_addr'));
        $local = $service->stats();
        try {
            $status = $client->status();
        } catch (SidecarUnavailable $e) {
            if ($this->option('json')) {
                $this->line(json_encode(['sidecar' => null, 'error' => $e->getMessage(), 'process' => $local], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
            } else {
                $this->error('Sidecar: DOWN. ' . $e->getMessage());
                $this->processTable($local);
            }

            return self::FAILURE;
        }
        if ($this->option('json')) {
            $this->line(json_encode(['sidecar' => $status, 'process' => $local], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));

            return self::SUCCESS;
        }

        $this->info(sprintf('Sidecar: UP (pid %d, version %s, uptime %ds) at %s', $status['pid'], $status['version'], $status['uptime_secs'], $client->endpoint()));
        $this->line("Socket: {$status['socket']}   Spool: {$status['spool_dir']}");
        $in = $status['ingest'];
        $this->line(sprintf(
            'Ingest: %d events journaled, %d duplicates dropped, %d invalid, %d/%d connections (active/total), %d spool files drained (%d events)',
            $in['events'], $in['duplicates'], $in['invalid_events'], $in['connections_active'], $in['connections_total'], $in['spool_files'], $in['spool_events']
        ));
        $j = $status['journal'];
        $this->line(sprintf('Journal: %d segment(s), %s on disk, head at %d', $j['segments'], self::bytes($j['disk_bytes']), $j['head']));
        if (($j['writable'] ?? 1) !== 1 || ($j['corrupt_frames'] ?? 0) > 0 || ($in['php_lost_events'] ?? 0) > 0) {
            $this->warn(sprintf('Durability: journal %s, %d damaged frames skipped (%d bytes), %d events lost by PHP processes (loss records)',
                ($j['writable'] ?? 1) === 1 ? 'writable' : 'NOT WRITABLE (ingest paused)', $j['corrupt_frames'] ?? 0, $j['corrupt_bytes'] ?? 0, $in['php_lost_events'] ?? 0));
        }
        $targets = [];
        foreach ($status['destinations'] as $d) {
            $targets[$d['name']] = $d;
        }
        $rows = [];
        foreach ($status['sinks'] as $s) {
            $rows[] = [
                $s['name'], $s['kind'], $targets[$s['name']]['target'] ?? '', $s['healthy'] ? 'yes' : 'NO',
                $s['delivered'], self::bytes($s['lag_bytes']), $s['retries'], $s['permanent_failures'],
                ($s['replayed_after_restart'] ?? 0) + ($s['resent_after_unclear_failure'] ?? 0),
                round($s['last_latency_us'] / 1000, 1) . ' ms',
            ];
        }
        $this->table(['target', 'kind', 'where', 'healthy', 'delivered', 'backlog', 'retries', 'refused', 'possible dupes', 'last latency'], $rows);
        $this->processTable($local);

        return self::SUCCESS;
    }

    private function processTable(array $stats): void
    {
        $this->line('This process (' . getmypid() . '):');
        $this->table(['counter', 'value'], array_map(fn ($k, $v) => [$k, is_scalar($v) ? (string) $v : json_encode($v)], array_keys($stats), $stats));
    }

    private static function bytes(int $n): string
    {
        foreach (['B', 'KiB', 'MiB', 'GiB'] as $unit) {
            if ($n < 1024 || $unit === 'GiB') {
                return $unit === 'B' ? "$n B" : sprintf('%.1f %s', $n, $unit);
            }
            $n /= 1024;
        }

        return (string) $n;
    }
}
