<?php
// Pusher-protocol benchmarks through the sidecar, measured where a browser
// would see them: in a pusher-js client subscribed over WebSocket.
//   php pusher.php compare  STATUS_SOCKET EXT PORT BATCH N ROUNDS ANCHOR_SCRIPT
//       the server's own ceiling (the anchor: sequential batch_events of BATCH
//       events) and the sidecar, alternately, ROUNDS times; both measured at
//       the pusher-js client; medians and their ratio
//   php pusher.php latency  STATUS_SOCKET EXT PORT RATE SECONDS
//       broadcastData -> pusher-js receipt at a paced RATE
//   php pusher.php anchor   - - PORT SCRIPT ARGS...
//       any anchor script, with pusher-js subscribed to its channel
require __DIR__ . '/lib.php';
$mode = $argv[1];
[$status, $ext, $port] = [$argv[2], $argv[3], $argv[4]];
$root = dirname(__DIR__, 2);

/** Starts a pusher-js client in stats mode; returns [process, read()]. */
function client(string $root, string $port, string $channel): array
{
    $file = tempnam(sys_get_temp_dir(), 'pjs');
    $proc = proc_open(['node', "$root/tests/js/client.js", '--port', $port, '--key', 'scada-key', '--channels', $channel, '--stats', $file],
        [1 => ['file', '/dev/null', 'w'], 2 => ['file', "$file.log", 'w']], $pipes, null, array_merge(getenv(), ['NODE_PATH' => "$root/tests/js/node_modules"]));
    $read = fn() => json_decode((string)@file_get_contents($file), true) ?: [];
    $deadline = microtime(true) + 20;
    while (empty($read()['ready'])) {
        if (microtime(true) > $deadline) { fwrite(STDERR, "pusher-js did not subscribe\n" . @file_get_contents("$file.log")); exit(1); }
        usleep(20000);
    }
    return [$proc, $read, $file];
}

function stop_client(array $c): void
{
    proc_terminate($c[0]);
    proc_close($c[0]);
    @unlink($c[2]);
    @unlink($c[2] . '.log');
}

/** Waits until the client's count stops growing (or reaches $want). */
function settle(callable $read, int $want, float $timeout = 60): array
{
    $deadline = microtime(true) + $timeout;
    $last = -1; $stable = 0;
    while (microtime(true) < $deadline) {
        usleep(50000);
        $st = $read();
        $count = $st['count'] ?? 0;
        if ($count >= $want) { return $st; }
        $stable = $count === $last ? $stable + 1 : 0;
        if ($stable >= 40) { return $st; }
        $last = $count;
    }
    return $read();
}

/** The anchor script's rate as the client sees it. */
function anchor_rate(string $root, string $port, array $cmd, int $n): array
{
    $c = client($root, $port, 'scada-realtime');
    $t0 = microtime(true);
    $out = trim((string)shell_exec(implode(' ', array_map('escapeshellarg', array_merge([PHP_BINARY], $cmd)))));
    $st = settle($c[1], $n);
    stop_client($c);
    return ['rate' => $st['count'] / max(1e-6, $st['last_at_ms'] / 1000 - $t0), 'received' => $st['count'], 'own' => $out];
}

/** The sidecar's rate: one producer sends $n events as fast as it can. */
function sidecar_rate(string $root, string $port, string $status, string $ext, int $n): array
{
    $channel = 'bench-' . bin2hex(random_bytes(3));
    $c = client($root, $port, $channel);
    sidecar_idle($status, 'pusher');
    $t0 = microtime(true);
    $out = trim((string)shell_exec(implode(' ', array_map('escapeshellarg', [PHP_BINARY, '-d', "extension=$ext", "$root/tests/bench/produce.php", (string)$n, $channel]))));
    $st = settle($c[1], $n);
    stop_client($c);
    return ['rate' => $st['count'] / max(1e-6, $st['last_at_ms'] / 1000 - $t0), 'received' => $st['count'], 'own' => $out];
}

function median(array $v): float
{
    sort($v);
    return $v[intdiv(count($v), 2)];
}

if ($mode === 'compare') {
    [$batch, $n, $rounds, $anchor] = [(int)$argv[5], (int)$argv[6], (int)$argv[7], $argv[8]];
    $a = $s = [];
    $received = true;
    for ($r = 0; $r < $rounds; $r++) {
        $x = anchor_rate($root, $port, [$anchor, (string)$n, (string)$batch], $n);
        $y = sidecar_rate($root, $port, $status, $ext, $n);
        $received = $received && $x['received'] === $n && $y['received'] === $n;
        printf("  round %d: server ceiling %6.0f events/s   sidecar %6.0f events/s   (received %d/%d and %d/%d)\n",
            $r + 1, $x['rate'], $y['rate'], $x['received'], $n, $y['received'], $n);
        $a[] = $x['rate']; $s[] = $y['rate'];
    }
    printf("batch=%d median: server ceiling %.0f events/s, sidecar %.0f events/s = %.0f%% of the ceiling; %s received by pusher-js\n",
        $batch, median($a), median($s), 100 * median($s) / median($a), $received ? '100%' : 'NOT all');
} elseif ($mode === 'latency') {
    [$rate, $seconds] = [(int)$argv[5], (float)$argv[6]];
    $channel = 'lat-' . bin2hex(random_bytes(3));
    $c = client($root, $port, $channel);
    sidecar_idle($status, 'pusher');
    $producer = <<<'PHP'
        <?php
        [$_, $rate, $seconds, $channel] = $argv;
        $s = new Scada\Broadcasting\ScadaBroadcastingService();
        $t0 = microtime(true); $i = 0;
        while (($now = microtime(true)) - $t0 < $seconds) {
            $due = (int)(($now - $t0) * $rate);
            for (; $i < $due; $i++) { $s->broadcastData(['id' => $i, 'value' => 20 + $i % 10, 'sent_us' => (int)(microtime(true) * 1e6)], $channel); }
            usleep(200);
        }
        $s->flush();
        echo $i;
        PHP;
    $file = inline_script($producer);
    $sent = (int)shell_exec(escapeshellarg(PHP_BINARY) . ' -d extension=' . escapeshellarg($ext) . ' ' . escapeshellarg($file) . " $rate $seconds $channel");
    $st = settle($c[1], $sent);
    printf("latency broadcastData->pusher-js at %d events/s for %.0fs: received=%d/%d p50=%.2fms p99=%.2fms max=%.2fms\n",
        $rate, $seconds, $st['count'], $sent, $st['p50_ms'], $st['p99_ms'], $st['max_ms']);
    stop_client($c);
} elseif ($mode === 'anchor') {
    $x = anchor_rate($root, $port, array_slice($argv, 5), (int)($argv[6] ?? 0));
    echo $x['own'], "\n";
    printf("  the same run at the pusher-js client: received=%d rate=%.0f events/s\n", $x['received'], $x['rate']);
}
