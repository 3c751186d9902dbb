<?php

namespace Scada\Broadcasting\Tests\Support;

use RuntimeException;

/**
 * Real processes for the integration tests: redis-server on a free loopback
 * port, the scada-sidecar binary, PHP producers. Everything is stopped in
 * tearDown; output goes to log files under the test's temp directory.
 */
final class Processes
{
    public static function root(): string
    {
        return dirname(__DIR__, 2);
    }

    public static function sidecarBinary(): string
    {
        $bin = getenv('SCADA_SIDECAR_BIN') ?: self::root() . '/target/release/scada-sidecar';
        if (!is_executable($bin)) {
            throw new RuntimeException("scada-sidecar not found at $bin; run `cargo build --release` (make build)");
        }
        return $bin;
    }

    public static function extension(): string
    {
        return getenv('SCADA_EXTENSION') ?: self::root() . '/target/release/libscada_broadcast.so';
    }

    /** True when php.ini enables the extension (as in the Docker images), not `-d extension=`. */
    public static function extensionFromIni(): bool
    {
        return str_contains((string) php_ini_scanned_files(), 'scada_broadcast');
    }

    /** The PHP arguments that load the extension in a child process (none when php.ini does). */
    public static function extensionArgs(): array
    {
        return self::extensionFromIni() ? [] : ['-d', 'extension=' . self::extension()];
    }

    public static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($s === false) {
            throw new RuntimeException("no free port: $errstr");
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int)substr($name, strrpos($name, ':') + 1);
    }

    public static function tempDir(string $name): string
    {
        $dir = sys_get_temp_dir() . '/scada-it-' . $name . '-' . getmypid() . '-' . bin2hex(random_bytes(3));
        mkdir($dir, 0700, true);
        return $dir;
    }

    public static function removeDir(string $dir): void
    {
        if (!is_dir($dir)) {
            return;
        }
        $it = new \RecursiveIteratorIterator(
            new \RecursiveDirectoryIterator($dir, \FilesystemIterator::SKIP_DOTS),
            \RecursiveIteratorIterator::CHILD_FIRST
        );
        foreach ($it as $f) {
            $f->isDir() && !$f->isLink() ? @rmdir($f->getPathname()) : @unlink($f->getPathname());
        }
        @rmdir($dir);
    }

    /** Waits until $probe returns true, or fails with $what after $seconds. */
    public static function waitFor(callable $probe, float $seconds, string $what)
    {
        $deadline = microtime(true) + $seconds;
        do {
            $r = $probe();
            if ($r) {
                return $r;
            }
            usleep(10000);
        } while (microtime(true) < $deadline);
        throw new RuntimeException("timed out after {$seconds}s waiting for $what");
    }

    public static function tcpOpen(int $port): bool
    {
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $e, $m, 0.2);
        if ($s) {
            fclose($s);
            return true;
        }
        return false;
    }
}
