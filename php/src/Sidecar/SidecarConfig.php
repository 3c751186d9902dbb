<?php

namespace Scada\Broadcasting\Sidecar;

use Illuminate\Contracts\Config\Repository;
use Scada\Broadcasting\ScadaBroadcastingServiceProvider;

/**
 * The sidecar's TOML configuration, derived from Laravel's: the Redis target
 * from database.redis, Pusher-protocol targets from broadcasting.connections,
 * server settings from config/scada-broadcasting.php. One source of truth.
 */
final class SidecarConfig
{
    public function __construct(private Repository $config, private string $defaultDataDir)
    {
    }

    /** @return array<string, array> the configuration as nested arrays */
    public function toArray(): array
    {
        $scada = $this->config->get('scada-broadcasting', []);
        $sidecar = $scada['sidecar'] ?? [];
        $server = array_filter([
            'socket' => $scada['socket'] ?? null,
            'spool_dir' => $scada['spool_dir'] ?? null,
            'data_dir' => $sidecar['data_dir'] ?? $this->defaultDataDir,
            'socket_group' => $sidecar['socket_group'] ?? null,
            'status_addr' => $sidecar['status_addr'] ?? null,
            'shutdown_timeout_secs' => isset($sidecar['shutdown_timeout_secs']) ? (int) $sidecar['shutdown_timeout_secs'] : null,
        ], fn ($v) => $v !== null && $v !== '');
        $out = ['server' => $server];

        $redisTarget = $sidecar['targets']['redis'] ?? ['enabled' => true, 'connection' => 'default'];
        if (filter_var($redisTarget['enabled'] ?? true, FILTER_VALIDATE_BOOLEAN)) {
            $connection = $this->config->get('database.redis.' . ($redisTarget['connection'] ?? 'default'), []);
            $redis = array_filter([
                'url' => $connection['url'] ?? null,
                'host' => $connection['host'] ?? null,
                'port' => isset($connection['port']) ? (int) $connection['port'] : null,
                'username' => $connection['username'] ?? null,
                'password' => $connection['password'] ?? null,
                'db' => isset($connection['database']) ? (int) $connection['database'] : null,
            ], fn ($v) => $v !== null && $v !== '');
            $redis['prefix'] = (string) $this->config->get('database.redis.options.prefix', '');
            if (filter_var($redisTarget['last_value'] ?? false, FILTER_VALIDATE_BOOLEAN)) {
                $redis['last_value'] = true;
            }
            $out['redis'] = $redis;
        }

        $targets = $sidecar['targets']['pusher'] ?? [];
        if ($targets === []) {
            // By default the scada connection itself names the Pusher-protocol server, when it has credentials.
            $scadaConnection = $this->config->get('broadcasting.connections.scada', []);
            if (! empty($scadaConnection['app_id']) && ! empty($scadaConnection['key']) && ! empty($scadaConnection['secret'])) {
                $targets = ['pusher' => ['connection' => 'scada']];
            }
        }
        foreach ($targets as $name => $target) {
            $connection = $this->config->get('broadcasting.connections.' . ($target['connection'] ?? $name), []);
            $options = $connection['options'] ?? [];
            $scheme = $options['scheme'] ?? ((($options['useTLS'] ?? $options['encrypted'] ?? true) === false) ? 'http' : 'https');
            $out['pusher'][] = array_filter([
                'name' => (string) $name,
                'app_id' => (string) ($connection['app_id'] ?? ''),
                'key' => (string) ($connection['key'] ?? ''),
                'secret' => (string) ($connection['secret'] ?? ''),
                'host' => $options['host'] ?? null,
                'port' => isset($options['port']) ? (int) $options['port'] : null,
                'scheme' => $scheme,
                'cluster' => $options['cluster'] ?? null,
                'max_batch_events' => isset($target['max_batch_events']) ? (int) $target['max_batch_events'] : null,
                'max_in_flight' => isset($target['max_in_flight']) ? (int) $target['max_in_flight'] : null,
                'max_request_bytes' => isset($target['max_request_bytes']) ? (int) $target['max_request_bytes'] : null,
                'max_event_bytes' => isset($target['max_event_bytes']) ? (int) $target['max_event_bytes'] : null,
                'idempotency_key' => isset($target['idempotency_key']) ? (bool) $target['idempotency_key'] : null,
            ], fn ($v) => $v !== null && $v !== '');
        }

        // The SSE listener (opt-in: an address). Its secret is the one the app
        // signs SSE tokens with, resolved as the token route resolves it.
        $sse = $scada['sse'] ?? [];
        if (($sse['addr'] ?? '') !== '' && ($sse['addr'] ?? null) !== null) {
            $out['sse'] = array_filter([
                'addr' => (string) $sse['addr'],
                'secret' => ScadaBroadcastingServiceProvider::sseSecret($this->config),
                'cors_origins' => self::list($sse['cors'] ?? []),
                'allowed_hosts' => self::list($sse['allowed_hosts'] ?? []),
                'dashboard_connect' => self::list($sse['dashboard_connect'] ?? []),
            ], fn ($v) => $v !== null && $v !== '' && $v !== []);
        }

        foreach ($scada['throttle'] ?? [] as $rule) {
            $out['throttle'][] = [
                'channels' => (string) $rule['channels'],
                'window_ms' => (int) ($rule['window_ms'] ?? 100),
                'mode' => (string) ($rule['mode'] ?? 'aggregate'),
            ];
        }

        return $out;
    }

    /** The TOML text; secrets replaced by *** unless $withSecrets. */
    public function toToml(bool $withSecrets = true): string
    {
        $lines = ['# generated by `php artisan scada:sidecar` from the Laravel configuration'];
        $data = $this->toArray();
        foreach (['server', 'redis', 'sse'] as $table) {
            if (isset($data[$table])) {
                $lines[] = '';
                $lines[] = "[$table]";
                foreach ($data[$table] as $k => $v) {
                    $lines[] = "$k = " . self::value($k, $v, $withSecrets);
                }
            }
        }
        foreach (['pusher', 'throttle'] as $array) {
            foreach ($data[$array] ?? [] as $item) {
                $lines[] = '';
                $lines[] = "[[$array]]";
                foreach ($item as $k => $v) {
                    $lines[] = "$k = " . self::value($k, $v, $withSecrets);
                }
            }
        }

        return implode("\n", $lines) . "\n";
    }

    /** @return list<string> a config list, or a comma-separated string, trimmed, without empties */
    private static function list(mixed $v): array
    {
        $items = is_array($v) ? $v : explode(',', (string) $v);

        return array_values(array_filter(array_map(fn ($i) => trim((string) $i), $items), fn ($i) => $i !== ''));
    }

    private static function value(string $key, mixed $v, bool $withSecrets): string
    {
        if (is_array($v)) {
            return '[' . implode(', ', array_map(fn ($i) => self::value($key, $i, $withSecrets), $v)) . ']';
        }
        if (is_bool($v)) {
            return $v ? 'true' : 'false';
        }
        if (is_int($v)) {
            return (string) $v;
        }
        if (! $withSecrets && in_array($key, ['password', 'secret'], true)) {
            return '"***"';
        }
        if (! $withSecrets && $key === 'url') {
            $v = preg_replace('{(//[^:/@]*:)[^@]*@}', '$1***@', (string) $v);
        }

        return '"' . strtr((string) $v, ['\\' => '\\\\', '"' => '\\"', "\n" => '\\n', "\r" => '\\r', "\t" => '\\t']) . '"';
    }
}
