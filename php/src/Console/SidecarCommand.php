<?php

namespace Scada\Broadcasting\Console;

use Illuminate\Console\Command;
use Scada\Broadcasting\Exceptions\SidecarBinaryMissing;
use Scada\Broadcasting\Sidecar\SidecarConfig;

/**
 * Runs the sidecar in the foreground (for supervisor, systemd or a container)
 * with a configuration derived from Laravel's, and forwards SIGTERM/SIGINT so
 * it can deliver what it holds before exiting.
 */
class SidecarCommand extends Command
{
    protected $signature = 'scada:sidecar
        {--print-config : Print the generated sidecar configuration (secrets redacted) and exit}
        {--show-secrets : With --print-config, print passwords and secrets too}
        {--binary= : Path of the scada-sidecar binary (default: config scada-broadcasting.sidecar.binary, SCADA_SIDECAR_BIN)}';

    protected $description = 'Run the scada-broadcast sidecar in the foreground, configured from Laravel';

    public function handle(): int
    {
        $config = new SidecarConfig($this->laravel['config'], $this->laravel->storagePath() . '/scada-broadcast');

        if ($this->option('print-config')) {
            $this->output->write($config->toToml((bool) $this->option('show-secrets')));

            return self::SUCCESS;
        }

        $binary = $this->findBinary((string) ($this->option('binary') ?: $this->laravel['config']->get('scada-broadcasting.sidecar.binary', 'scada-sidecar')));
        $file = $this->writeConfig($config->toToml());
        $this->info("Starting $binary --config $file");

        // Only the generated file configures it: Laravel's config is the source of truth.
        $env = array_filter([
            'PATH' => getenv('PATH') ?: '/usr/local/bin:/usr/bin:/bin',
            'HOME' => getenv('HOME') ?: null,
            'SCADA_LOG' => (string) $this->laravel['config']->get('scada-broadcasting.sidecar.log', 'info'),
            'SCADA_WORKER_THREADS' => getenv('SCADA_WORKER_THREADS') ?: null,
            // Channel patterns delivered first (the sidecar reads it from its environment).
            'SCADA_PRIORITY' => ((string) $this->laravel['config']->get('scada-broadcasting.sidecar.priority', '')) ?: null,
        ]);
        $process = proc_open([$binary, '--config', $file], [0 => STDIN, 1 => STDOUT, 2 => STDERR], $pipes, null, $env);
        if (! is_resource($process)) {
            $this->error("Could not start $binary");

            return self::FAILURE;
        }
        $this->forwardSignals($process);

        while (($status = proc_get_status($process))['running']) {
            usleep(100_000);
        }
        proc_close($process);
        $code = $status['signaled'] ? 128 + $status['termsig'] : $status['exitcode'];
        if ($code !== 0) {
            $this->error("scada-sidecar exited with status $code");
        }

        return $code;
    }

    private function findBinary(string $binary): string
    {
        if (str_contains($binary, '/')) {
            if (is_file($binary) && is_executable($binary)) {
                return $binary;
            }
            throw SidecarBinaryMissing::named($binary);
        }
        foreach (explode(PATH_SEPARATOR, getenv('PATH') ?: '') as $dir) {
            if ($dir !== '' && is_executable("$dir/$binary") && is_file("$dir/$binary")) {
                return "$dir/$binary";
            }
        }
        throw SidecarBinaryMissing::named($binary);
    }

    /** The generated configuration holds secrets: 0600, in storage. */
    private function writeConfig(string $toml): string
    {
        $dir = $this->laravel->storagePath() . '/scada-broadcast';
        if (! is_dir($dir)) {
            mkdir($dir, 0750, true);
        }
        $file = "$dir/sidecar.toml";
        $old = umask(0077);
        file_put_contents($file, $toml);
        umask($old);
        chmod($file, 0600);

        return $file;
    }

    /** @param resource $process */
    private function forwardSignals($process): void
    {
        if (! function_exists('pcntl_async_signals')) {
            return;
        }
        pcntl_async_signals(true);
        foreach ([SIGTERM, SIGINT, SIGHUP] as $signal) {
            pcntl_signal($signal, function (int $signo) use ($process) {
                $this->line('Forwarding signal ' . $signo . ' to the sidecar; it delivers what it holds before exiting.');
                proc_terminate($process, $signo === SIGHUP ? SIGTERM : $signo);
            });
        }
    }
}
