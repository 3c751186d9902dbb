<?php

namespace Scada\Broadcasting\Tests\Support;

/** The real scada-sidecar binary, configured by environment variables. */
final class Sidecar
{
    public readonly string $socket;
    public readonly string $spoolDir;
    public readonly string $dataDir;
    private ?Process $process = null;

    private ?string $configFile = null;

    /** @param array<string,string> $env */
    public function __construct(private string $dir, private array $env = [], ?string $configToml = null)
    {
        if ($configToml !== null) {
            $this->configFile = "$dir/sidecar.toml";
            file_put_contents($this->configFile, $configToml);
        }
        $this->socket = "$dir/run/sidecar.sock";
        $this->spoolDir = "$dir/run/spool";
        $this->dataDir = "$dir/data";
        $this->start();
    }

    /** @return array<string,string> */
    public function env(): array
    {
        return array_merge([
            'SCADA_SIDECAR_SOCKET' => $this->socket,
            'SCADA_SPOOL_DIR' => $this->spoolDir,
            'SCADA_DATA_DIR' => $this->dataDir,
            'SCADA_LOG' => getenv('SCADA_TEST_LOG') ?: 'info',
        ], $this->env);
    }

    public function start(bool $wait = true): void
    {
        $cmd = [Processes::sidecarBinary()];
        if ($this->configFile !== null) {
            array_push($cmd, '--config', $this->configFile);
        }
        $this->process = new Process($cmd, $this->dir . '/sidecar.log', $this->env());
        if ($wait) {
            $this->waitReady();
        }
    }

    public function waitReady(): void
    {
        Processes::waitFor(fn() => file_exists($this->socket) && @stream_socket_client("unix://{$this->socket}", $e, $m, 0.2), 15,
            "sidecar socket {$this->socket}\n" . ($this->process?->output() ?? ''));
    }

    public function process(): ?Process
    {
        return $this->process;
    }

    /** Graceful stop (SIGTERM); returns the exit code. */
    public function stop(): int
    {
        $code = $this->process?->stop(20) ?? 0;
        $this->process = null;
        return $code;
    }

    public function kill(): void
    {
        $this->process?->kill();
        $this->process = null;
    }

    public function log(): string
    {
        return is_file($this->dir . '/sidecar.log') ? (string)file_get_contents($this->dir . '/sidecar.log') : '';
    }

    /** The SSE listener's URL for $query (the sidecar runs with SCADA_SSE_ADDR). */
    public function sseUrl(string $query): string
    {
        $addr = $this->env['SCADA_SSE_ADDR'] ?? throw new \LogicException('this sidecar has no SCADA_SSE_ADDR');
        return "http://$addr/sse?$query";
    }

    /** GET /status from the status socket. */
    public function status(): array
    {
        $s = stream_socket_client('unix://' . dirname($this->socket) . '/status.sock', $errno, $err, 2.0);
        if ($s === false) {
            throw new \RuntimeException("status socket: $err");
        }
        fwrite($s, "GET /status HTTP/1.0\r\n\r\n");
        $raw = stream_get_contents($s);
        fclose($s);
        return json_decode(explode("\r\n\r\n", $raw, 2)[1], true, 512, JSON_THROW_ON_ERROR);
    }

    /** One sink's counters from the status, by name. */
    public function sink(string $name): array
    {
        foreach ($this->status()['sinks'] as $s) {
            if ($s['name'] === $name) {
                return $s;
            }
        }
        throw new \RuntimeException("no sink named $name");
    }

    public function __destruct()
    {
        $this->kill();
    }
}
