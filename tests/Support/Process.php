<?php

namespace Scada\Broadcasting\Tests\Support;

use RuntimeException;

/** A child process with its output in a log file, stopped on destruct. */
final class Process
{
    /** @var resource|null */
    private $proc;
    private int $pid;

    /**
     * @param list<string> $command
     * @param array<string,string> $env added to the current environment
     */
    public function __construct(array $command, public readonly string $log, array $env = [], ?string $cwd = null)
    {
        $fullEnv = array_merge(getenv(), $env);
        $this->proc = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes, $cwd, $fullEnv);
        if (!is_resource($this->proc)) {
            throw new RuntimeException('cannot start ' . implode(' ', $command));
        }
        $this->pid = proc_get_status($this->proc)['pid'];
    }

    public function pid(): int
    {
        return $this->pid;
    }

    public function running(): bool
    {
        return $this->proc !== null && proc_get_status($this->proc)['running'];
    }

    public function signal(int $signal): void
    {
        if ($this->running()) {
            posix_kill($this->pid, $signal);
        }
    }

    /** Waits for exit; returns the exit code (or -1 when it had to be killed). */
    public function wait(float $seconds = 10.0): int
    {
        if ($this->proc === null) {
            return -1;
        }
        $deadline = microtime(true) + $seconds;
        while (true) {
            $st = proc_get_status($this->proc);
            if (!$st['running']) {
                proc_close($this->proc);
                $this->proc = null;
                return $st['signaled'] ? 128 + $st['termsig'] : $st['exitcode'];
            }
            if (microtime(true) > $deadline) {
                $this->signal(SIGKILL);
                usleep(50000);
                proc_close($this->proc);
                $this->proc = null;
                return -1;
            }
            usleep(5000);
        }
    }

    /** SIGTERM, then wait; SIGKILL if it does not stop in time. */
    public function stop(float $seconds = 10.0): int
    {
        $this->signal(SIGTERM);
        return $this->wait($seconds);
    }

    public function kill(): void
    {
        $this->signal(SIGKILL);
        $this->wait(5);
    }

    public function output(): string
    {
        return is_file($this->log) ? (string)file_get_contents($this->log) : '';
    }

    public function __destruct()
    {
        if ($this->proc !== null) {
            $this->kill();
        }
    }
}
