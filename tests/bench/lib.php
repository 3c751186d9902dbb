<?php
// Shared helpers for the benchmark and demo scripts (plain PHP, no Composer).

/** The SCADA sample every benchmark sends: 6 keys, like the anchors'. */
function scada_sample(int $i): array
{
    return ['id' => $i, 'channel' => 'PLC-' . ($i % 16), 'tag' => 'temperature', 'value' => 20.0 + ($i % 100) / 10, 'unit' => 'C', 'quality' => 'good'];
}

/** GET a path from the sidecar's status socket; decoded JSON. */
function sidecar_status(string $statusSocket): array
{
    $s = @stream_socket_client("unix://$statusSocket", $errno, $err, 2.0);
    if ($s === false) {
        throw new RuntimeException("cannot reach the sidecar status socket $statusSocket: $err");
    }
    fwrite($s, "GET /status HTTP/1.0\r\n\r\n");
    $raw = stream_get_contents($s);
    fclose($s);
    return json_decode(explode("\r\n\r\n", $raw, 2)[1] ?? 'null', true) ?? [];
}

function sink_delivered(array $status, string $sink): int
{
    foreach ($status['sinks'] ?? [] as $s) {
        if ($s['name'] === $sink) {
            return (int)$s['delivered'];
        }
    }
    return 0;
}

function percentile(array $sorted, float $p): float
{
    if (!$sorted) {
        return NAN;
    }
    return $sorted[min(count($sorted) - 1, (int)floor(count($sorted) * $p))];
}

/** Waits until every sink has caught up with the journal and the count is stable. */
function sidecar_idle(string $statusSocket, string $sink, float $timeout = 60.0): int
{
    $deadline = microtime(true) + $timeout;
    $last = -1;
    while (microtime(true) < $deadline) {
        $st = sidecar_status($statusSocket);
        $lag = 0;
        foreach ($st['sinks'] ?? [] as $s) { $lag += $s['lag_bytes']; }
        $d = sink_delivered($st, $sink);
        if ($lag === 0 && $d === $last) {
            return $d;
        }
        $last = $d;
        usleep(50000);
    }
    throw new RuntimeException('the sidecar did not become idle');
}

/** Writes an inline producer script to a temporary .php file, removed when this script ends. */
function inline_script(string $code): string
{
    $tmp = tempnam(sys_get_temp_dir(), 'scada-bench');
    $file = "$tmp.php";
    rename($tmp, $file); // tempnam's own file would otherwise be left behind
    file_put_contents($file, $code);
    register_shutdown_function(static fn() => @unlink($file));
    return $file;
}
